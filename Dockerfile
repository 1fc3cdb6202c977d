# The setgate container image: a static binary on distroless, running as nonroot.
#
#   docker build --build-arg VERSION=0.1.0 -t ghcr.io/setgate/setgate:0.1.0 .
#
# Tag the image with the same version as the chart's appVersion (charts/setgate/Chart.yaml):
# the chart's image.tag defaults to it.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/setgate ./cmd/setgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/setgate /setgate
USER nonroot
# The default SETGATE_DATA_DIR (./data) is writable here for `docker run` trials; the chart
# sets its own paths because it runs with a read-only root filesystem.
WORKDIR /home/nonroot
# 8080: push receiver (SETGATE_HTTP_ADDR); 9090: admin, /healthz /readyz /metrics (SETGATE_ADMIN_ADDR).
EXPOSE 8080 9090
ENTRYPOINT ["/setgate"]
CMD ["serve"]
