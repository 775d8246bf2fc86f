FROM python:3.11-slim
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY ocicat ocicat
COPY indexer indexer
COPY api api
COPY migrations migrations
RUN pip install --no-cache-dir . && useradd --system --uid 10001 ocicat
# Numeric, so that Kubernetes' runAsNonRoot can verify it (deploy/helm/ocicat runs it as 10001 too).
USER 10001
ENV OCICAT_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["ocicat"]
CMD ["serve"]
