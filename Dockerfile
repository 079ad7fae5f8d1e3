# syntax=docker/dockerfile:1
# pipeproof: the server and its web app in one small image.
#
#   docker build -t pipeproof .
#   docker run -p 8080:8080 -v pipeproof-data:/data -e PIPEPROOF_ADMIN_TOKEN=... pipeproof
#
# Build stage: the web app with trunk (wasm) and the server as a static musl binary.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools nodejs npm \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown x86_64-unknown-linux-musl
# Versions pinned as in scripts/bootstrap.sh: trunk 0.21 is the last to build on rustc 1.95, and
# wasm-bindgen-cli must equal the wasm-bindgen crate version in Cargo.lock.
RUN cargo install trunk --version 0.21.14 --locked \
 && cargo install wasm-bindgen-cli --version 0.2.130
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
ENV PATH=/src/node_modules/.bin:$PATH
COPY . .
RUN cd web && trunk build --release --offline --locked
RUN cargo build --profile dist --locked --target x86_64-unknown-linux-musl -p pipeproof-server
RUN mkdir -p /out/data \
 && cp target/x86_64-unknown-linux-musl/dist/pipeproof /out/pipeproof \
 && cp -r web/dist /out/web

# Final stage: nothing but the static binary, the web app and an empty data directory.
FROM scratch
COPY --from=build /out/pipeproof /pipeproof
COPY --from=build /out/web /web
COPY --from=build --chown=10001:10001 /out/data /data
USER 10001:10001
ENV PIPEPROOF_DATA_DIR=/data \
    PIPEPROOF_BIND=0.0.0.0:8080 \
    PIPEPROOF_STATIC_DIR=/web \
    PIPEPROOF_LOG=info
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s \
  CMD ["/pipeproof", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/pipeproof"]
CMD ["serve"]
