{{- define "jetstream-pin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jetstream-pin.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "jetstream-pin.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "jetstream-pin.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "jetstream-pin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jetstream-pin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The webhook's pods only: never the certificate Job's. */}}
{{- define "jetstream-pin.webhookSelectorLabels" -}}
{{ include "jetstream-pin.selectorLabels" . }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "jetstream-pin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "jetstream-pin.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "jetstream-pin.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "jetstream-pin.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "jetstream-pin.tlsSecret" -}}
{{- if eq .Values.certificates.mode "provided" -}}
{{- required "certificates.provided.secretName is required in provided mode" .Values.certificates.provided.secretName -}}
{{- else -}}
{{- printf "%s-tls" (include "jetstream-pin.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "jetstream-pin.overridesName" -}}
{{- default (printf "%s-overrides" (include "jetstream-pin.fullname" .)) .Values.overrides.name -}}
{{- end -}}

{{- define "jetstream-pin.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The DNS names the serving certificate covers: every way to spell the Service. */}}
{{- define "jetstream-pin.dnsNames" -}}
{{- $svc := include "jetstream-pin.fullname" . -}}
{{- $ns := .Release.Namespace -}}
- {{ $svc }}
- {{ $svc }}.{{ $ns }}
- {{ $svc }}.{{ $ns }}.svc
- {{ $svc }}.{{ $ns }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/* Namespaces that are never sent to the webhook. */}}
{{- define "jetstream-pin.excludedNamespaces" -}}
{{- $excluded := list .Release.Namespace "kube-system" -}}
{{- range .Values.webhook.excludeNamespaces -}}
{{- $excluded = append $excluded . -}}
{{- end -}}
{{- toJson (uniq $excluded) -}}
{{- end -}}

{{/* The hardened container security context, shared by the webhook and the certs Job. */}}
{{- define "jetstream-pin.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "jetstream-pin.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* CEL: container `c` runs one of the configured images (any tag or digest). */}}
{{- define "jetstream-pin.targetImage" -}}
{{- $tests := list -}}
{{- range .Values.config.images -}}
{{- $repo := .repository -}}
{{- $tests = append $tests (printf "c.image == '%s' || c.image.startsWith('%s:') || c.image.startsWith('%s@')" $repo $repo $repo) -}}
{{- end -}}
{{- printf "has(c.image) && (%s)" (join " || " $tests) -}}
{{- end -}}

{{/*
RE2: Jetstream's command line up to its subcommand, as webhook/core/argv.py reads it:
the word `jetstream` (any directory), then group options (those that take a
value as the next word, or any other option word).
*/}}
{{- define "jetstream-pin.jetstreamPrefix" -}}
(^|[\s/])jetstream(\s+(--(log[_-](project|dataset|table)[_-]id|task[_-](profiling|monitoring)[_-]log[_-]table[_-]id|log[_-]source)\s+\S+|-\S*))*\s+
{{- end -}}

{{/* RE2: a recognised subcommand; and one of the pinned ones (config.pinnedCommands). */}}
{{- define "jetstream-pin.anySubcommand" -}}
{{- printf `%s[A-Za-z_][A-Za-z0-9_-]*(\s|$)` (include "jetstream-pin.jetstreamPrefix" .) -}}
{{- end -}}
{{- define "jetstream-pin.pinnedSubcommand" -}}
{{- $commands := .Values.config.pinnedCommands | default (list "run" "ensure-enrollments" "export-statistics-to-json" "export-metadata-to-json") -}}
{{- printf `%s(%s)(\s|$)` (include "jetstream-pin.jetstreamPrefix" .) (join "|" $commands) -}}
{{- end -}}

{{/* CEL: the pod runs one of the configured images (any tag or digest). */}}
{{- define "jetstream-pin.imageCondition" -}}
{{- $match := include "jetstream-pin.targetImage" . -}}
{{- printf "object.spec.containers.exists(c, %s) || (has(object.spec.initContainers) && object.spec.initContainers.exists(c, %s))" $match $match -}}
{{- end -}}

{{/* The namespaces whose pods are pinned: never the release's own, nor kube-system. */}}
{{- define "jetstream-pin.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ include "jetstream-pin.excludedNamespaces" . }}
  {{- with .Values.webhook.namespaces }}
  - key: kubernetes.io/metadata.name
    operator: In
    values: {{ toJson . }}
  {{- end }}
{{- end -}}

{{/* The admission policy's actions: refuse only when the webhook itself would
(enforce + deny); in audit mode or onError allow the webhook admits unpinned pods,
so the policy warns and audits. validatingPolicy.actions forces either. */}}
{{- define "jetstream-pin.policyActions" -}}
{{- $actions := .Values.validatingPolicy.actions -}}
{{- if eq $actions "auto" -}}
{{- $actions = and (eq .Values.mode "enforce") (eq .Values.onError "deny") | ternary "deny" "warn" -}}
{{- end -}}
{{- eq $actions "deny" | ternary "[Deny]" "[Warn, Audit]" -}}
{{- end -}}

{{/* Audit mode must never refuse a pod, not even when the webhook cannot be called. */}}
{{- define "jetstream-pin.failurePolicy" -}}
{{- .Values.webhook.failurePolicy | default (eq .Values.mode "audit" | ternary "Ignore" "Fail") -}}
{{- end -}}

{{/* The pod of the certificate Jobs and the renewal CronJob: `jetstream-pin certs` for the
     Service's names. dict: root, account (ServiceAccount), args (appended). */}}
{{- define "jetstream-pin.certsPod" -}}
{{- $root := .root -}}
{{- with $root -}}
metadata:
  labels:
    {{- include "jetstream-pin.labels" . | nindent 4 }}
    app.kubernetes.io/component: certificates
spec:
  serviceAccountName: {{ $.account }}
  automountServiceAccountToken: true
  restartPolicy: Never
  securityContext:
    {{- include "jetstream-pin.podSecurityContext" . | nindent 4 }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: certs
      image: {{ include "jetstream-pin.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command:
        - jetstream-pin
        - certs
        - --secret={{ .Release.Namespace }}/{{ include "jetstream-pin.tlsSecret" . }}
        - --webhook={{ include "jetstream-pin.fullname" . }}
        - --days={{ .Values.certificates.selfManaged.days }}
        - --renew-before-days={{ .Values.certificates.selfManaged.renewBeforeDays }}
        {{- range (include "jetstream-pin.dnsNames" . | fromYamlArray) }}
        - --dns={{ . }}
        {{- end }}
        {{- range $.args }}
        - {{ . }}
        {{- end }}
      resources:
        requests: {cpu: 50m, memory: 64Mi}
        limits: {memory: 128Mi}
      securityContext:
        {{- include "jetstream-pin.containerSecurityContext" . | nindent 8 }}
{{- end -}}
{{- end -}}
