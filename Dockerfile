# syntax=docker/dockerfile:1
#
# The ficus image: a static binary on distroless/static, run as a numeric
# non-root user, with no shell and nothing written to its file system (run
# it with a read-only root file system; ficus needs no /tmp).
#
#   docker build -t ficus:dev --build-arg VERSION=$(git describe --tags --always) .
#
# The binary is built by `make static`, the same target a test builds and
# checks (cmd/ficus/deploy_test.go: a static ELF, no program interpreter),
# so the flags live in one place, the Makefile. See docs/deployment.md.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first: this layer is reused while go.mod and go.sum stay the same.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    make static STATIC_BIN=/out/ficus VERSION=${VERSION}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ficus /ficus
# 65532 is distroless's nonroot user; numeric, so that Kubernetes can check
# runAsNonRoot without a passwd file.
USER 65532:65532
# The front door and the operational listener (listen.addr, listen.ops_addr).
EXPOSE 8080 9090
ENTRYPOINT ["/ficus"]
CMD ["serve", "--config", "/etc/ficus/ficus.yaml"]
