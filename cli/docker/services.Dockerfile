# PostgreSQL 15 and Redis 7 for the compose file, from Debian's packages on
# the locally built base image (no image registry is needed).
FROM aos/debian-base:bookworm
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 redis-server >/dev/null \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
COPY aos-postgres /usr/local/bin/aos-postgres
RUN chmod 0755 /usr/local/bin/aos-postgres
