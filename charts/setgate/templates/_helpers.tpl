{{/*
Chart name, truncated to the 63 characters a label value allows.
*/}}
{{- define "setgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the prefix of every object name. Truncated to 63 characters less room for the
longest suffix this chart adds ("-issuers").
*/}}
{{- define "setgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 55 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 55 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "setgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object.
*/}}
{{- define "setgate.labels" -}}
helm.sh/chart: {{ include "setgate.chart" . }}
{{ include "setgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: setgate
{{- end }}

{{/*
Selector labels: the pods' identity, shared by the Deployment, Service, PodDisruptionBudget,
NetworkPolicy and (through the Service) the ServiceMonitor. Never change them: a Deployment's
selector is immutable.
*/}}
{{- define "setgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "setgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "setgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "setgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Container image reference: repository@digest, or repository:tag with the tag defaulting to
the chart's appVersion.
*/}}
{{- define "setgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
"true" when setgate runs its embedded NATS server (nats.url empty), else "".
*/}}
{{- define "setgate.embedded" -}}
{{- if not .Values.nats.url }}true{{- end }}
{{- end }}

{{/*
Paths inside the container.
*/}}
{{- define "setgate.issuersDir" -}}/etc/setgate/issuers{{- end }}
{{- define "setgate.natsDir" -}}/etc/setgate/nats{{- end }}
{{- define "setgate.pushTLSDir" -}}/etc/setgate/push-tls{{- end }}
{{- define "setgate.dataDir" -}}/data{{- end }}
{{- define "setgate.consumerPasswordDir" -}}/etc/setgate/nats-consumer{{- end }}

{{/*
The container port of the embedded NATS listener: the port of nats.embedded.addr.
*/}}
{{- define "setgate.embeddedNATSPort" -}}
{{- splitList ":" .Values.nats.embedded.addr | last | int }}
{{- end }}

{{/*
"true" when the embedded NATS listener is served on the Service (nats.embedded.expose), else "".
*/}}
{{- define "setgate.embeddedNATSExposed" -}}
{{- if and (include "setgate.embedded" .) .Values.nats.embedded.expose }}true{{- end }}
{{- end }}

{{/*
The NATS secret files, as a YAML list of {env, secret, key, path, value}: one entry per file
that is configured, from the user's existingSecret or from the chart-created <fullname>-nats
Secret (then value holds the content).
Empty in embedded mode.
*/}}
{{- define "setgate.natsFiles" -}}
{{- $files := list }}
{{- if not (include "setgate.embedded" .) }}
{{- $own := printf "%s-nats" (include "setgate.fullname" .) }}
{{- $n := .Values.nats }}
{{- if $n.creds.existingSecret }}
{{- $files = append $files (dict "env" "SETGATE_NATS_CREDS_FILE" "secret" $n.creds.existingSecret "key" $n.creds.key "path" "nats.creds") }}
{{- else if $n.creds.value }}
{{- $files = append $files (dict "env" "SETGATE_NATS_CREDS_FILE" "secret" $own "key" "nats.creds" "path" "nats.creds" "value" $n.creds.value) }}
{{- end }}
{{- if $n.nkey.existingSecret }}
{{- $files = append $files (dict "env" "SETGATE_NATS_NKEY_FILE" "secret" $n.nkey.existingSecret "key" $n.nkey.key "path" "nkey.seed") }}
{{- else if $n.nkey.value }}
{{- $files = append $files (dict "env" "SETGATE_NATS_NKEY_FILE" "secret" $own "key" "nkey.seed" "path" "nkey.seed" "value" $n.nkey.value) }}
{{- end }}
{{- if $n.password.existingSecret }}
{{- $files = append $files (dict "env" "SETGATE_NATS_PASSWORD_FILE" "secret" $n.password.existingSecret "key" $n.password.key "path" "nats.password") }}
{{- else if $n.password.value }}
{{- $files = append $files (dict "env" "SETGATE_NATS_PASSWORD_FILE" "secret" $own "key" "nats.password" "path" "nats.password" "value" $n.password.value) }}
{{- end }}
{{- if $n.token.existingSecret }}
{{- $files = append $files (dict "env" "SETGATE_NATS_TOKEN_FILE" "secret" $n.token.existingSecret "key" $n.token.key "path" "nats.token") }}
{{- else if $n.token.value }}
{{- $files = append $files (dict "env" "SETGATE_NATS_TOKEN_FILE" "secret" $own "key" "nats.token" "path" "nats.token" "value" $n.token.value) }}
{{- end }}
{{- range $f := list (dict "env" "SETGATE_NATS_CA_FILE" "keyKey" "caKey" "value" "ca" "path" "ca.crt") (dict "env" "SETGATE_NATS_CERT_FILE" "keyKey" "certKey" "value" "cert" "path" "tls.crt") (dict "env" "SETGATE_NATS_KEY_FILE" "keyKey" "keyKey" "value" "key" "path" "tls.key") }}
{{- $key := get $n.tls $f.keyKey }}
{{- if $n.tls.existingSecret }}
{{- if $key }}
{{- $files = append $files (dict "env" $f.env "secret" $n.tls.existingSecret "key" $key "path" $f.path) }}
{{- end }}
{{- else if get $n.tls $f.value }}
{{- $files = append $files (dict "env" $f.env "secret" $own "key" $f.path "path" $f.path "value" (get $n.tls $f.value)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $files }}
{{- end }}

{{/*
SETGATE_STREAM_MAX_BYTES: stream.maxBytes when set; otherwise, in embedded mode,
stream.maxBytesPercent of nats.embedded.persistence.size in bytes (the rest of the volume is
headroom for JetStream's own files: indexes, consumer and KV state, and blocks not yet
compacted); with an external NATS server "0" (no byte limit of setgate's own). The size is
a Kubernetes quantity (values.schema.json allows digits, an optional fraction, and a suffix).
*/}}
{{- define "setgate.streamMaxBytes" -}}
{{- if .Values.stream.maxBytes }}
{{- .Values.stream.maxBytes }}
{{- else if include "setgate.embedded" . }}
{{- $size := toString .Values.nats.embedded.persistence.size }}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $size }}
{{- $suffix := trimPrefix $num $size }}
{{- if or (not $num) (not (hasKey $units $suffix)) }}
{{- fail (printf "nats.embedded.persistence.size %q is not a quantity like 1Gi; set stream.maxBytes" $size) }}
{{- end }}
{{- $bytes := mulf (float64 $num) (get $units $suffix) (float64 .Values.stream.maxBytesPercent) 0.01 | floor }}
{{- printf "%.0f" $bytes }}
{{- else }}0{{- end }}
{{- end }}

{{/*
Checks that fail the render with a clear message.
*/}}
{{- define "setgate.validate" -}}
{{- if include "setgate.embedded" . }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) 1) }}
{{- fail (printf "embedded NATS (nats.url empty) runs a single replica: autoscaling.maxReplicas is %d; set nats.url to a NATS cluster to scale out, or disable autoscaling" (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and (not .Values.autoscaling.enabled) (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "embedded NATS (nats.url empty) runs a single replica: replicaCount is %d; set nats.url to a NATS cluster to run more than one replica" (int .Values.replicaCount)) }}
{{- end }}
{{- if gt (int .Values.stream.replicas) 1 }}
{{- fail (printf "embedded NATS (nats.url empty) is a single server: stream.replicas is %d, it must be 1" (int .Values.stream.replicas)) }}
{{- end }}
{{- if .Values.nats.embedded.expose }}
{{- $host := splitList ":" .Values.nats.embedded.addr | initial | join ":" }}
{{- if or (not .Values.nats.embedded.addr) (hasPrefix "127." $host) (eq $host "localhost") (eq $host "[::1]") }}
{{- fail (printf "nats.embedded.expose needs nats.embedded.addr on an address other pods reach (e.g. 0.0.0.0:4222), got %q" .Values.nats.embedded.addr) }}
{{- end }}
{{- if not .Values.nats.embedded.consumerPassword.existingSecret }}
{{- fail "nats.embedded.expose needs nats.embedded.consumerPassword.existingSecret: the Secret your consumers mount to log in as user consumer" }}
{{- end }}
{{- end }}
{{- end }}
{{- if not (include "setgate.embedded" .) }}
{{- $n := .Values.nats }}
{{- if contains "@" $n.url }}
{{- fail "nats.url has a user part (user:password@ or token@), which setgate refuses: the secret would sit in a ConfigMap and show wherever the URL is shown. Remove it and set nats.user with nats.password (existingSecret or value), or nats.token" }}
{{- end }}
{{- $password := or $n.password.existingSecret $n.password.value }}
{{- if and $n.user (not $password) }}
{{- fail "nats.user needs nats.password (existingSecret or value)" }}
{{- end }}
{{- if and $password (not $n.user) }}
{{- fail "nats.password needs nats.user" }}
{{- end }}
{{- $kinds := list }}
{{- if or $n.creds.existingSecret $n.creds.value }}{{ $kinds = append $kinds "nats.creds" }}{{ end }}
{{- if or $n.nkey.existingSecret $n.nkey.value }}{{ $kinds = append $kinds "nats.nkey" }}{{ end }}
{{- if $n.user }}{{ $kinds = append $kinds "nats.user with nats.password" }}{{ end }}
{{- if or $n.token.existingSecret $n.token.value }}{{ $kinds = append $kinds "nats.token" }}{{ end }}
{{- if gt (len $kinds) 1 }}
{{- fail (printf "%s: set one NATS login, not two kinds at once" (join " and " $kinds)) }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and .Values.pushTLS.enabled (not .Values.pushTLS.existingSecret) }}
{{- fail "pushTLS.enabled needs pushTLS.existingSecret: a kubernetes.io/tls Secret with the server certificate" }}
{{- end }}
{{- $seen := dict }}
{{- range $i, $iss := .Values.issuers }}
{{- if hasKey $seen $iss.name }}
{{- fail (printf "issuers: the name %q is used twice (issuers[%d]); names must be unique" $iss.name $i) }}
{{- end }}
{{- $_ := set $seen $iss.name true }}
{{- end }}
{{- end }}
