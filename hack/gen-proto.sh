#!/usr/bin/env bash
# Regenerates the Go code of proto/ with pinned tool versions.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_VERSION="${PROTOC_VERSION:-3.21.12}"
PROTOC_GEN_GO_GRPC_VERSION="${PROTOC_GEN_GO_GRPC_VERSION:-v1.6.2}"
TOOLS_DIR="${FERRY_CACHE:-$HOME/.cache/ferry}/tools"
mkdir -p "$TOOLS_DIR"

if ! command -v protoc >/dev/null 2>&1; then
  echo "protoc not found: installing Debian's protobuf-compiler (protoc ${PROTOC_VERSION})"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
fi
have="$(protoc --version | awk '{print $2}')"
if [ "$have" != "$PROTOC_VERSION" ]; then
  echo "protoc $have found, but the committed code was generated with $PROTOC_VERSION;" \
       "the version comment in generated files will differ" >&2
fi

# protoc-gen-go is pinned by go.mod (google.golang.org/protobuf).
go build -o "$TOOLS_DIR/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
gg="$TOOLS_DIR/protoc-gen-go-grpc-$PROTOC_GEN_GO_GRPC_VERSION"
if [ ! -x "$gg" ]; then
  GOBIN="$TOOLS_DIR/gobin-grpc" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
  mv "$TOOLS_DIR/gobin-grpc/protoc-gen-go-grpc" "$gg"
fi

find proto -name '*.pb.go' -delete
protoc -I proto \
  --plugin=protoc-gen-go="$TOOLS_DIR/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$gg" \
  --go_out=. --go_opt=module=github.com/ferrydev/ferry \
  --go-grpc_out=. --go-grpc_opt=module=github.com/ferrydev/ferry \
  $(find proto -name '*.proto' | sort)
echo "generated: $(find proto -name '*.pb.go' | sort | tr '\n' ' ')"
