# metricsd container image: a static-ish release build on a distroless runtime, non-root,
# read-only-root friendly (it writes nothing), health-checked through its own /health.
#
#   docker build -t metricsd .
#   docker run -d --name metricsd --pid=host --network=host \
#     -v /proc:/host/proc:ro -v /sys:/host/sys:ro -v /:/host/root:ro,rslave \
#     -e HOST_PROC=/host/proc -e HOST_SYS=/host/sys -e HOST_ROOT=/host/root \
#     -v $PWD/config.json:/etc/metricsd/config.json:ro --read-only metricsd
#
# HOST_PROC/HOST_SYS/HOST_ROOT make the agent report the host rather than its own container.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
COPY src src
RUN cargo build --release --locked && strip target/release/metricsd

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/metricsd /usr/local/bin/metricsd
COPY examples/metricsd-config.example.json /etc/metricsd/config.example.json
USER nonroot:nonroot
EXPOSE 8080
ENV MC_SERVER_HOST=0.0.0.0
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/metricsd", "--health", "127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/metricsd"]
CMD ["-config", "/etc/metricsd/config.json"]
