{{/*
Names, paths and labels: each is defined here once and used by every
template that needs it.
*/}}

{{/* Object names (fixed, as in config/: Ferry is one per cluster). */}}
{{- define "ferry.installer.name" -}}ferry-installer{{- end }}
{{- define "ferry.installer.leaderElectionName" -}}ferry-installer-leader-election{{- end }}
{{- define "ferry.installer.metricsServiceName" -}}ferry-installer-metrics{{- end }}
{{- define "ferry.catalogd.name" -}}catalogd{{- end }}
{{- define "ferry.catalogd.serviceAccountName" -}}ferry-catalogd{{- end }}
{{- define "ferry.catalogd.tokensSecretName" -}}catalogd-publish-tokens{{- end }}
{{- define "ferry.catalogd.dataClaimName" -}}catalogd-data{{- end }}

{{/* Paths inside catalogd's container, used by its flags and its mounts. */}}
{{- define "ferry.catalogd.dataDir" -}}/var/lib/catalogd{{- end }}
{{- define "ferry.catalogd.answersDir" -}}/var/cache/catalogd{{- end }}
{{- define "ferry.catalogd.tokensDir" -}}/etc/catalogd/tokens{{- end }}
{{- define "ferry.catalogd.tlsDir" -}}/etc/catalogd/tls{{- end }}
{{- define "ferry.catalogd.clientCADir" -}}/etc/catalogd/client-ca{{- end }}
{{- define "ferry.catalogd.catalogsDir" -}}/catalogs{{- end }}

{{/* Labels of every object. */}}
{{- define "ferry.labels" -}}
app.kubernetes.io/part-of: ferry
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of a component (dict "component" NAME): the same as in
config/, so that a Deployment made from config/ can be taken over by the
chart (selectors are immutable).
*/}}
{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
{{- end }}

{{/* Labels of an object of a component (dict "root" $ "component" NAME). */}}
{{- define "ferry.componentLabels" -}}
{{ include "ferry.labels" .root }}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The image of a component (dict "root" $ "image" VALUES): repository@digest
when a digest is set, else repository:tag, the tag defaulting to the chart's
appVersion.
*/}}
{{- define "ferry.image" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ .image.tag | default .root.Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The Secret catalogd's token file comes from. */}}
{{- define "ferry.catalogd.tokensSecret" -}}
{{- .Values.catalogd.publishing.tokens.existingSecret | default (include "ferry.catalogd.tokensSecretName" .) -}}
{{- end }}

{{/* The claim catalogd's data directory is on. */}}
{{- define "ferry.catalogd.dataClaim" -}}
{{- .Values.catalogd.publishing.persistence.existingClaim | default (include "ferry.catalogd.dataClaimName" .) -}}
{{- end }}

{{/* Whether catalogd has a client CA (mutual TLS): "true" or "". */}}
{{- define "ferry.catalogd.mtls" -}}
{{- with .Values.catalogd.tls.clientCA }}{{ if or .secretName .configMapName }}true{{ end }}{{ end -}}
{{- end }}

{{/*
ferry.validate fails the rendering on combinations of values that cannot
work; values.schema.json has already checked every value on its own.
*/}}
{{- define "ferry.validate" -}}
{{- $i := .Values.installer -}}
{{- $c := .Values.catalogd -}}
{{- $p := $c.publishing -}}
{{- if and (gt (int $i.replicas) 1) (not $i.leaderElection.enabled) -}}
{{- fail (printf "installer.replicas is %d but installer.leaderElection.enabled is false: replicas would act at the same time; enable leader election or run one replica" (int $i.replicas)) -}}
{{- end -}}
{{- if eq (int $i.metricsPort) (int $i.probePort) -}}
{{- fail (printf "installer.metricsPort and installer.probePort are both %d: they must differ" (int $i.metricsPort)) -}}
{{- end -}}
{{- if eq (int $c.grpcPort) (int $c.metricsPort) -}}
{{- fail (printf "catalogd.grpcPort and catalogd.metricsPort are both %d: they must differ" (int $c.grpcPort)) -}}
{{- end -}}
{{- if $p.enabled -}}
{{- if and $p.tokens.existingSecret $p.tokens.inline -}}
{{- fail "catalogd.publishing.tokens: set existingSecret or inline, not both" -}}
{{- end -}}
{{- if not (or $p.tokens.existingSecret $p.tokens.inline) -}}
{{- fail "catalogd.publishing.enabled is true but no tokens are given: set catalogd.publishing.tokens.existingSecret (a Secret with the token file under catalogd.publishing.tokens.key) or catalogd.publishing.tokens.inline (the token file)" -}}
{{- end -}}
{{- if and (not $c.tls.enabled) (not $p.allowInsecure) -}}
{{- fail "catalogd.publishing.enabled is true but catalogd.tls.enabled is false: publishing sends bearer tokens, which would travel in the clear; enable TLS (catalogd.tls.enabled, catalogd.tls.secretName) or set catalogd.publishing.allowInsecure=true when a TLS-terminating proxy or mesh is in front of catalogd" -}}
{{- end -}}
{{- if gt (int $c.replicas) 1 -}}
{{- fail (printf "catalogd.replicas is %d but catalogd.publishing.enabled is true: the published-bundle store is one file that one catalogd opens; run one replica (or none)" (int $c.replicas)) -}}
{{- end -}}
{{- if and $p.persistence.enabled (not $p.persistence.existingClaim) (not $p.persistence.accessModes) -}}
{{- fail "catalogd.publishing.persistence.accessModes is empty: a PersistentVolumeClaim needs at least one access mode" -}}
{{- end -}}
{{- else -}}
{{- if $p.allowInsecure -}}
{{- fail "catalogd.publishing.allowInsecure is true but catalogd.publishing.enabled is false: it only applies to publishing" -}}
{{- end -}}
{{- end -}}
{{- if $c.tls.enabled -}}
{{- if not $c.tls.secretName -}}
{{- fail "catalogd.tls.enabled is true but catalogd.tls.secretName is empty: name a kubernetes.io/tls Secret (tls.crt, tls.key) with catalogd's certificate" -}}
{{- end -}}
{{- if and $c.tls.clientCA.secretName $c.tls.clientCA.configMapName -}}
{{- fail "catalogd.tls.clientCA: set secretName or configMapName, not both" -}}
{{- end -}}
{{- else -}}
{{- if or $c.tls.secretName (include "ferry.catalogd.mtls" .) -}}
{{- fail "catalogd.tls.secretName or catalogd.tls.clientCA is set but catalogd.tls.enabled is false: set catalogd.tls.enabled=true to serve TLS" -}}
{{- end -}}
{{- end -}}
{{- $seen := dict -}}
{{- range $n, $cat := $c.catalogs -}}
{{- if hasKey $seen $cat.name -}}
{{- fail (printf "catalogd.catalogs[%d].name: %q is used by catalogd.catalogs[%d] too; names must be unique" $n $cat.name (get $seen $cat.name)) -}}
{{- end -}}
{{- $_ := set $seen $cat.name $n -}}
{{- end -}}
{{- end }}
