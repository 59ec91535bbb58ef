#!/bin/sh
exec /usr/bin/grpc_python_plugin "$@"
