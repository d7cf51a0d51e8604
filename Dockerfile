# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=$(git describe --tags --always) -t resumer .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/resumer ./cmd/resumer

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/resumer /resumer
USER nonroot:nonroot
EXPOSE 8080 9464
ENTRYPOINT ["/resumer"]
CMD ["serve"]
