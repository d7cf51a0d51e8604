# syntax=docker/dockerfile:1
#
# resumer as a container image: one static binary on distroless, running as an unprivileged
# user, with the version stamped in at build time.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t resumer:dev .
#   docker run --rm resumer:dev version
#
# The image has no shell and no HEALTHCHECK on purpose: orchestrators probe the admin
# listener instead (GET :9464/healthz for liveness, GET :9464/readyz for readiness), see
# deploy/README.md. It runs as UID/GID 65532 given as numbers, so that Kubernetes'
# runAsNonRoot can verify it, and needs no writable file system.

ARG GO_VERSION=1.26

# Build on the builder's own platform and cross-compile: CGO is off, so the binary is static
# and GOOS/GOARCH are all a multi-platform build (--platform linux/amd64,linux/arm64) needs.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/resumer ./cmd/resumer

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="resumer" \
      org.opencontainers.image.description="Keeps Persona inquiries from silently lapsing: signed webhooks in, reminders out." \
      org.opencontainers.image.source="https://github.com/resumer/resumer" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/resumer /usr/local/bin/resumer
USER 65532:65532
# 8080: public listener (Persona webhooks, resume API); 9464: admin (/metrics, /healthz, /readyz).
EXPOSE 8080 9464
ENTRYPOINT ["/usr/local/bin/resumer"]
CMD ["serve"]
