{{/* Names */}}
{{- define "clinie.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "clinie.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: <fullname>-<component> */}}
{{- define "clinie.component" -}}
{{- printf "%s-%s" (include "clinie.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "clinie.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels. Call with (dict "root" $ "component" "extractor") */}}
{{- define "clinie.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clinie.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "clinie.labels" -}}
helm.sh/chart: {{ include "clinie.chart" .root }}
{{ include "clinie.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: clinie
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata: name, namespace, labels, annotations. Call with (dict "root" $ "component" "x" "name" "..." ) */}}
{{- define "clinie.metadata" -}}
name: {{ .name }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "clinie.labels" . | nindent 2 }}
{{- with .root.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "clinie.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "clinie.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* image reference from {registry, repository, tag, digest}; call with (dict "image" .Values.image "root" $) */}}
{{- define "clinie.image" -}}
{{- $repo := .image.repository -}}
{{- if .image.registry -}}{{- $repo = printf "%s/%s" .image.registry .image.repository -}}{{- end -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.image.tag | default .root.Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/* Secrets: name and key of each secret value (chart-created or existing) */}}
{{- define "clinie.secretName" -}}
{{- include "clinie.fullname" . -}}
{{- end -}}

{{- define "clinie.database.secretName" -}}
{{- default (include "clinie.secretName" .) .Values.database.existingSecret -}}
{{- end -}}

{{- define "clinie.database.secretKey" -}}
{{- if .Values.database.existingSecret -}}{{ .Values.database.existingSecretKey }}{{- else -}}database-url{{- end -}}
{{- end -}}

{{- define "clinie.kafkaSasl.secretName" -}}
{{- default (include "clinie.secretName" .) .Values.kafka.sasl.existingSecret -}}
{{- end -}}

{{- define "clinie.kafkaSasl.usernameKey" -}}
{{- if .Values.kafka.sasl.existingSecret -}}{{ .Values.kafka.sasl.usernameKey }}{{- else -}}kafka-sasl-username{{- end -}}
{{- end -}}

{{- define "clinie.kafkaSasl.passwordKey" -}}
{{- if .Values.kafka.sasl.existingSecret -}}{{ .Values.kafka.sasl.passwordKey }}{{- else -}}kafka-sasl-password{{- end -}}
{{- end -}}

{{- define "clinie.kafkaSasl.oauthTokenKey" -}}
{{- if .Values.kafka.sasl.existingSecret -}}{{ .Values.kafka.sasl.oauthTokenKey }}{{- else -}}kafka-oauth-token{{- end -}}
{{- end -}}

{{/* Kafka TLS files (CA bundle, client certificate and key) mounted from one Secret under /etc/clinie/kafka-tls */}}
{{- define "clinie.kafkaTls.secretName" -}}
{{- if .Values.kafka.tls.existingSecret -}}{{ .Values.kafka.tls.existingSecret }}{{- else -}}{{ include "clinie.fullname" . }}-kafka-tls{{- end -}}
{{- end -}}

{{- define "clinie.kafkaTls.caKey" -}}
{{- if .Values.kafka.tls.existingSecret -}}{{ .Values.kafka.tls.caKey }}{{- else if .Values.kafka.tls.caCert -}}ca.crt{{- end -}}
{{- end -}}

{{- define "clinie.kafkaTls.certKey" -}}
{{- if .Values.kafka.tls.existingSecret -}}{{ .Values.kafka.tls.certKey }}{{- else if .Values.kafka.tls.clientCert -}}tls.crt{{- end -}}
{{- end -}}

{{- define "clinie.kafkaTls.keyKey" -}}
{{- if include "clinie.kafkaTls.certKey" . -}}
{{- if .Values.kafka.tls.existingSecret -}}{{ .Values.kafka.tls.keyKey }}{{- else -}}tls.key{{- end -}}
{{- end -}}
{{- end -}}

{{- define "clinie.kafkaTls.keyPasswordKey" -}}
{{- if .Values.kafka.tls.existingSecret -}}{{ .Values.kafka.tls.keyPasswordKey }}{{- else if .Values.kafka.tls.keyPassword -}}key-password{{- end -}}
{{- end -}}

{{- define "clinie.kafkaTls.enabled" -}}
{{- if or (include "clinie.kafkaTls.caKey" .) (include "clinie.kafkaTls.certKey" .) -}}true{{- end -}}
{{- end -}}

{{/* JWT verification key mounted as a file: "" when none (JWKS URL or auth off) */}}
{{- define "clinie.jwt.format" -}}
{{- $jwt := .Values.api.auth.jwt -}}
{{- if .Values.api.auth.enabled -}}
{{- if $jwt.existingSecret -}}{{ $jwt.existingSecretFormat }}
{{- else if $jwt.jwks -}}jwks
{{- else if $jwt.publicKey -}}pem
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "clinie.jwt.secretName" -}}
{{- if .Values.api.auth.jwt.existingSecret -}}{{ .Values.api.auth.jwt.existingSecret }}{{- else -}}{{ include "clinie.fullname" . }}-jwt{{- end -}}
{{- end -}}

{{- define "clinie.jwt.secretKey" -}}
{{- if .Values.api.auth.jwt.existingSecret -}}{{ .Values.api.auth.jwt.existingSecretKey }}
{{- else if eq (include "clinie.jwt.format" .) "jwks" -}}jwks.json
{{- else -}}public.pem
{{- end -}}
{{- end -}}

{{- define "clinie.tritonUrl" -}}
{{- if .Values.extractor.tritonUrl -}}
{{- .Values.extractor.tritonUrl -}}
{{- else -}}
{{- $port := ternary .Values.triton.ports.grpc .Values.triton.ports.http (eq .Values.extractor.tritonProtocol "grpc") -}}
{{- printf "%s.%s.svc:%d" (include "clinie.component" (dict "root" . "component" "triton")) .Release.Namespace (int $port) -}}
{{- end -}}
{{- end -}}

{{/* Cross-field checks the schema can't express; fail with one clear line */}}
{{- define "clinie.validate" -}}
{{- if not (or .Values.database.url .Values.database.existingSecret) -}}
{{- fail "database.url or database.existingSecret is required (the PostgreSQL database clinie stores resources in)" -}}
{{- end -}}
{{- if and .Values.extractor.enabled (not .Values.kafka.bootstrapServers) -}}
{{- fail "kafka.bootstrapServers is required (host:port of your Kafka brokers)" -}}
{{- end -}}
{{- if and .Values.extractor.autoscaling.enabled .Values.extractor.keda.enabled -}}
{{- fail "extractor.autoscaling.enabled and extractor.keda.enabled exclude each other: KEDA creates its own HPA" -}}
{{- end -}}
{{- if and (hasPrefix "SASL_" .Values.kafka.securityProtocol) (not .Values.kafka.sasl.mechanism) -}}
{{- fail (printf "kafka.securityProtocol=%s needs kafka.sasl.mechanism" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- if and .Values.kafka.sasl.mechanism (not (hasPrefix "SASL_" .Values.kafka.securityProtocol)) -}}
{{- fail "kafka.sasl.mechanism is set: kafka.securityProtocol must be SASL_PLAINTEXT or SASL_SSL" -}}
{{- end -}}
{{- $oauth := eq .Values.kafka.sasl.mechanism "OAUTHBEARER" -}}
{{- if and .Values.kafka.sasl.mechanism (not $oauth) (not .Values.kafka.sasl.existingSecret) (not (and .Values.kafka.sasl.username .Values.kafka.sasl.password)) -}}
{{- fail "kafka.sasl.username and kafka.sasl.password (or kafka.sasl.existingSecret) are required with kafka.sasl.mechanism" -}}
{{- end -}}
{{- if and $oauth (not .Values.kafka.sasl.existingSecret) (not .Values.kafka.sasl.oauthToken) -}}
{{- fail "kafka.sasl.mechanism=OAUTHBEARER needs kafka.sasl.oauthToken (or kafka.sasl.existingSecret)" -}}
{{- end -}}
{{- if and (include "clinie.kafkaTls.enabled" .) (not (has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL"))) -}}
{{- fail (printf "kafka.tls certificates are set but kafka.securityProtocol is %s: use SSL or SASL_SSL" .Values.kafka.securityProtocol) -}}
{{- end -}}
{{- if and (not .Values.kafka.tls.existingSecret) (ne (not .Values.kafka.tls.clientCert) (not .Values.kafka.tls.clientKey)) -}}
{{- fail "kafka.tls.clientCert and kafka.tls.clientKey go together (mutual TLS)" -}}
{{- end -}}
{{- if and (not .Values.kafka.tls.existingSecret) .Values.kafka.tls.keyPassword (not .Values.kafka.tls.clientKey) -}}
{{- fail "kafka.tls.keyPassword is set without kafka.tls.clientKey" -}}
{{- end -}}
{{- if and .Values.api.enabled .Values.api.auth.enabled -}}
{{- $jwt := .Values.api.auth.jwt -}}
{{- $n := 0 -}}
{{- range (list $jwt.publicKey $jwt.jwks $jwt.jwksUrl $jwt.existingSecret) -}}{{- if . -}}{{- $n = add1 $n -}}{{- end -}}{{- end -}}
{{- if ne (int $n) 1 -}}
{{- fail "api.auth.enabled needs exactly one of api.auth.jwt.publicKey, .jwks, .jwksUrl, .existingSecret (or api.auth.enabled=false)" -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.model.source "pvc") (not .Values.model.pvc.existingClaim) -}}
{{- fail "model.source=pvc needs model.pvc.existingClaim" -}}
{{- end -}}
{{- if and .Values.extractor.enabled (eq .Values.extractor.backend "triton") (not .Values.triton.enabled) (not .Values.extractor.tritonUrl) -}}
{{- fail "extractor.backend=triton with triton.enabled=false needs extractor.tritonUrl" -}}
{{- end -}}
{{- end -}}

{{/* Volumes and init container that provide the model repository at /models */}}
{{- define "clinie.model.volume" -}}
- name: model-repository
{{- if eq .Values.model.source "pvc" }}
  persistentVolumeClaim:
    claimName: {{ .Values.model.pvc.existingClaim }}
    readOnly: true
{{- else }}
  emptyDir:
    sizeLimit: {{ .Values.model.sizeLimit }}
{{- end }}
{{- end -}}

{{- define "clinie.model.volumeMount" -}}
- name: model-repository
  mountPath: /models
  readOnly: true
{{- if and (eq .Values.model.source "pvc") .Values.model.pvc.subPath }}
  subPath: {{ .Values.model.pvc.subPath }}
{{- end }}
{{- end -}}

{{- define "clinie.model.initContainer" -}}
{{- if eq .Values.model.source "image" }}
- name: copy-model
  image: {{ include "clinie.image" (dict "image" .Values.model.image "root" .) | quote }}
  imagePullPolicy: {{ .Values.model.image.pullPolicy }}
  command:
    - sh
    - -c
    - cp -R {{ .Values.model.image.path | trimSuffix "/" }}/. /model-repository/
  securityContext:
    {{- toYaml .Values.containerSecurityContext | nindent 4 }}
  resources:
    requests:
      cpu: 50m
      memory: 64Mi
    limits:
      cpu: 500m
      memory: 128Mi
  volumeMounts:
    - name: model-repository
      mountPath: /model-repository
{{- end }}
{{- end -}}

{{/* Pod-level settings shared by every pod */}}
{{- define "clinie.podCommon" -}}
serviceAccountName: {{ include "clinie.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}
