{{- define "ocicat.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ocicat.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: api or worker. */}}
{{- define "ocicat.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "ocicat.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "ocicat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "ocicat.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* Whether the chart writes a Secret of its own: for any secret value given without an existing Secret. */}}
{{- define "ocicat.ownSecret" -}}
{{- if or (and .Values.database.url (not .Values.database.existingSecret)) (and .Values.webhook.secrets (not .Values.webhook.existingSecret)) (and .Values.registry.password (not .Values.registry.existingSecret)) (and .Values.oidc.issuer (not .Values.oidc.existingSecret)) -}}true{{- end -}}
{{- end -}}

{{/* An env var from the existing Secret named in values, else from the chart's. */}}
{{- define "ocicat.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .existing | default (include "ocicat.fullname" .root) }}
      key: {{ if .existing }}{{ .key }}{{ else }}{{ .ownKey }}{{ end }}
{{- end -}}

{{/* The settings every ocicat container gets. */}}
{{- define "ocicat.env" -}}
{{- include "ocicat.secretEnv" (dict "root" . "name" "OCICAT_DATABASE_URL" "existing" .Values.database.existingSecret "key" .Values.database.existingSecretKey "ownKey" "database-url") }}
{{ include "ocicat.secretEnv" (dict "root" . "name" "OCICAT_WEBHOOK_SECRETS" "existing" .Values.webhook.existingSecret "key" .Values.webhook.existingSecretKey "ownKey" "webhook-secrets") }}
{{- if or .Values.registry.password .Values.registry.existingSecret }}
{{ include "ocicat.secretEnv" (dict "root" . "name" "OCICAT_REGISTRY_PASSWORD" "existing" .Values.registry.existingSecret "key" .Values.registry.existingSecretKey "ownKey" "registry-password") }}
{{- end }}
- name: OCICAT_REGISTRY_URL
  value: {{ .Values.registry.url | quote }}
{{- with .Values.registry.publicHost }}
- name: OCICAT_REGISTRY_PUBLIC_HOST
  value: {{ . | quote }}
{{- end }}
{{- with .Values.registry.username }}
- name: OCICAT_REGISTRY_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- with .Values.publicUrl }}
- name: OCICAT_PUBLIC_URL
  value: {{ . | quote }}
{{- end }}
- name: OCICAT_DEFAULT_VISIBILITY
  value: {{ .Values.defaultVisibility | quote }}
- name: OCICAT_LOG_FORMAT
  value: json
{{- with .Values.kafka.bootstrap }}
- name: OCICAT_KAFKA_BOOTSTRAP
  value: {{ . | quote }}
- name: OCICAT_KAFKA_TOPIC
  value: {{ $.Values.kafka.topic | quote }}
- name: OCICAT_KAFKA_GROUP
  value: {{ $.Values.kafka.group | quote }}
- name: OCICAT_KAFKA_PARTITIONS
  value: {{ $.Values.kafka.partitions | quote }}
- name: OCICAT_KAFKA_REPLICATION_FACTOR
  value: {{ $.Values.kafka.replicationFactor | quote }}
{{- with $.Values.kafka.catalogTopic }}
- name: OCICAT_KAFKA_CATALOG_TOPIC
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Sign-in with the identity provider: the API's alone (the workers never sign anyone in). */}}
{{/* Streaming replicas for the API's reads (API pods only: the workers write). */}}
{{- define "ocicat.replicaEnv" -}}
{{- with .Values.database }}
{{- if or (and .existingSecret .existingSecretReplicaUrlsKey) (and (not .existingSecret) .replicaUrls) }}
{{ include "ocicat.secretEnv" (dict "root" $ "name" "OCICAT_DATABASE_REPLICA_URLS" "existing" .existingSecret "key" .existingSecretReplicaUrlsKey "ownKey" "database-replica-urls") }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "ocicat.oidcEnv" -}}
{{- with .Values.oidc }}{{ if .issuer }}
- name: OCICAT_OIDC_ISSUER
  value: {{ .issuer | quote }}
- name: OCICAT_OIDC_CLIENT_ID
  value: {{ .clientId | quote }}
{{ include "ocicat.secretEnv" (dict "root" $ "name" "OCICAT_OIDC_CLIENT_SECRET" "existing" .existingSecret "key" .clientSecretKey "ownKey" "oidc-client-secret") }}
{{ include "ocicat.secretEnv" (dict "root" $ "name" "OCICAT_SECRET_KEY" "existing" .existingSecret "key" .secretKeyKey "ownKey" "secret-key") }}
- name: OCICAT_OIDC_GITLAB
  value: {{ .gitlab | quote }}
- name: OCICAT_OIDC_GITLAB_REPORTERS
  value: {{ .gitlabReporters | quote }}
- name: OCICAT_OIDC_REFRESH_SECONDS
  value: {{ .refreshSeconds | quote }}
- name: OCICAT_OIDC_STALE_SECONDS
  value: {{ .staleSeconds | quote }}
{{- with .name }}
- name: OCICAT_OIDC_NAME
  value: {{ . | quote }}
{{- end }}
{{- with .scopes }}
- name: OCICAT_OIDC_SCOPES
  value: {{ . | quote }}
{{- end }}
{{- with .roleRules }}
- name: OCICAT_OIDC_ROLE_RULES
  value: {{ toJson . | quote }}
{{- end }}
{{- end }}{{ end }}
{{- end -}}

{{/* A writable /tmp (the root filesystem is read-only): gunicorn's heartbeat files and the metrics of its processes. */}}
{{- define "ocicat.tmpVolume" -}}
- name: tmp
  emptyDir: {}
{{- end -}}
