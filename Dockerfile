# One image per datamill program, from one Dockerfile:
#
#   docker build --build-arg SERVICE=cleaner -t datamill/cleaner .
#   docker build --build-arg SERVICE=datamill --target cli -t datamill/datamill .
#
# SERVICE is extractor, cleaner, loader, scorer, lake or ecometer (target service,
# the default) or datamill, the operator CLI (target cli). The programs are
# static binaries on an empty base image, run as an unprivileged user; a
# service's healthcheck is the binary itself (`<service> healthcheck`), as
# the image holds no other program.

ARG GO_IMAGE=golang:1.26.8-bookworm

FROM ${GO_IMAGE} AS build
ARG SERVICE
WORKDIR /src
# The modules' requirements first, so that a code change reuses the
# downloaded modules.
COPY go.work go.work.sum ./
COPY schemas/go.mod schemas/go.sum schemas/
COPY pkg/go.mod pkg/go.sum pkg/
COPY tools/go.mod tools/go.sum tools/
COPY cmd/datamill/go.mod cmd/datamill/go.sum cmd/datamill/
COPY services/extractor/go.mod services/extractor/go.sum services/extractor/
COPY services/cleaner/go.mod services/cleaner/go.sum services/cleaner/
COPY services/loader/go.mod services/loader/go.sum services/loader/
COPY services/scorer/go.mod services/scorer/go.sum services/scorer/
COPY services/ecometer/go.mod services/ecometer/go.sum services/ecometer/
COPY services/lake/go.mod services/lake/go.sum services/lake/
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	scripts/docker/rootfs.sh "${SERVICE:?build with --build-arg SERVICE=<extractor|cleaner|loader|scorer|lake|ecometer|datamill>}" /out

FROM scratch AS cli
COPY --from=build /out/ /
COPY --from=build --chown=65532:65532 /out/var/lib/datamill /var/lib/datamill
USER 65532:65532
WORKDIR /var/lib/datamill
ENTRYPOINT ["/app"]

FROM cli AS service
# The extractor's ingest listens on HTTP_ADDR (:8080 by default); every
# service's /metrics and health on ADMIN_ADDR (127.0.0.1:9090 by default,
# which the healthcheck below reaches; compose sets 0.0.0.0:9090 inside its
# network for Prometheus).
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["/app", "healthcheck"]
