# syntax=docker/dockerfile:1
# Two images from one workspace build, for deploy/kubernetes/:
#
#   docker build --target sidecar -t functrace-sidecar:0.1.0 .
#   docker build --target mesh-demo -t functrace-mesh-demo:0.1.0 .
#
# Built against the workspace's Cargo.lock (--locked), run from distroless's `cc` image (glibc
# and libgcc, which the binaries link to; no shell, no package manager) as its `nonroot` user,
# 65532, the user the manifests require. Size target of the sidecar image: under 40 MB
# uncompressed, the base (about 23 MB) plus the stripped binary (4.8 MB on x86_64 when built
# with this recipe's settings outside a container).

FROM rust:1.95-bookworm AS source
WORKDIR /src
COPY . .
# Symbols are no use in the image; backtraces still name functions from the unwinding tables.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols

FROM source AS build-sidecar
RUN cargo build --release --locked -p functrace-sidecar --bin functrace-sidecar

FROM source AS build-mesh-demo
# The demo's apps print their function traces: #[trace] compiled in.
RUN cargo build --release --locked -p functrace-examples --example mesh --features trace

FROM gcr.io/distroless/cc-debian12:nonroot AS mesh-demo
COPY --from=build-mesh-demo /src/target/release/examples/mesh /usr/local/bin/mesh
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mesh"]

# Last, so that a plain `docker build .` makes the sidecar image.
FROM gcr.io/distroless/cc-debian12:nonroot AS sidecar
COPY --from=build-sidecar /src/target/release/functrace-sidecar /usr/local/bin/functrace-sidecar
USER 65532:65532
# admin (/metrics, /ready, /config), outbound, inbound: the ports of docs/sidecar.md.
EXPOSE 15000 15001 15006
ENTRYPOINT ["/usr/local/bin/functrace-sidecar"]
