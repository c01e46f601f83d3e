#!/bin/sh
# Container entry point: `serve` (the default CMD) with the model named by QWEN_EDGE_MODEL (the image's
# build argument MODEL, or -e QWEN_EDGE_MODEL=… at run time), downloaded into /models if it is not there
# yet. Without QWEN_EDGE_MODEL, serve downloads the default model itself. Any other command runs as given:
#   docker run … qwen-edge pull qwen2.5-1.5b-instruct      docker run … qwen-edge list
set -e
if [ "$1" = serve ] && [ -n "$QWEN_EDGE_MODEL" ]; then
    case " $* " in
        *" -m "*|*" --model "*) ;;
        *)
            path=$(qwen-edge pull "$QWEN_EDGE_MODEL")
            shift
            exec qwen-edge serve -m "$path" "$@"
            ;;
    esac
fi
exec qwen-edge "$@"
