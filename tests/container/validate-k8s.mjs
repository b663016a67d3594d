// Schema-checks Kubernetes manifests against the Kubernetes OpenAPI schemas
// shipped in the npm package kubernetes-models, twice:
//  - the package's compiled JSON-schema validators (types, required fields,
//    formats; they let unknown fields through, as the schemas do), and
//  - its TypeScript types, with each manifest as an object literal checked by
//    `tsc --strict`: excess-property checks reject every unknown or
//    misspelt field, as `kubectl apply --validate=strict` does.
// Then it checks that the manifests agree with each other and with the image
// (deploy/Dockerfile: uid/gid 10001, port 50051, data in /var/lib/countersd,
// metrics on 50052). Two kinds kubernetes-models does not have are checked
// by hand: the kustomization (its resources exist and are these files, its
// `images` entry names the StatefulSet's image) and the Prometheus
// Operator's ServiceMonitor (it selects the Service, scrapes a port it has).
//
//   node validate-k8s.mjs FILE.yaml...
//
// Prints one line per problem and exits 1 if there is any, 0 otherwise.
// Run from a directory whose node_modules has the packages of package.json
// (run.sh sets NODE_PATH-equivalent by running it from there).
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const problems = [];
const objects = [];
// Objects of kinds kubernetes-models does not model, checked below by hand.
const byHand = { Kustomization: [], ServiceMonitor: [] };
const checkedFiles = process.argv.slice(2).map((f) => resolve(f));

// apiVersion "apps/v1" -> "kubernetes-models/apps/v1/Kind";
// core "v1" -> "kubernetes-models/v1/Kind".
function modelFor(apiVersion, kind) {
  return require(`kubernetes-models/${apiVersion}/${kind}`)[kind];
}

for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length) {
      for (const e of doc.errors) problems.push(`${file}: YAML: ${e.message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj == null) continue;
    const where = `${file}: ${obj.kind}/${obj.metadata?.name ?? basename(file)}`;
    if (obj.kind in byHand) {
      byHand[obj.kind].push({ where, obj, file });
      continue;
    }
    let Model;
    try {
      Model = modelFor(obj.apiVersion, obj.kind);
    } catch (e) {
      problems.push(`${where}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      problems.push(`${where}: schema: ${e.message}`);
      continue;
    }
    objects.push({ where, obj });
  }
}

// Strict field check with tsc: one typed constant per object, on its own
// lines, so that an error's line number names the object.
{
  const here = dirname(fileURLToPath(import.meta.url));
  const lines = [];
  const ranges = [];
  objects.forEach(({ obj }, i) => {
    const t = `I${obj.kind}`;
    lines.push(`import type { ${t} as T${i} } from "kubernetes-models/${obj.apiVersion}/${obj.kind}";`);
  });
  objects.forEach(({ where, obj }, i) => {
    const first = lines.length + 1;
    lines.push(...`export const o${i}: T${i} = ${JSON.stringify(obj, null, 2)};`.split("\n"));
    ranges.push({ first, last: lines.length, where });
  });
  const ts = join(here, "manifests-strict-check.ts");
  writeFileSync(ts, lines.join("\n") + "\n");
  try {
    execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "--noEmit", "--strict",
      "--skipLibCheck", "--module", "nodenext", "--moduleResolution", "nodenext", ts],
      { cwd: here, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const out = `${e.stdout ?? ""}${e.stderr ?? ""}`.trim();
    let named = 0;
    for (const l of out.split("\n")) {
      const m = l.match(/\.ts\((\d+),\d+\): (error .*)$/);
      if (!m) continue;
      const r = ranges.find((x) => +m[1] >= x.first && +m[1] <= x.last);
      problems.push(`${r ? r.where : "strict check"}: ${m[2]}`);
      named++;
    }
    if (!named) problems.push(`strict check: tsc failed: ${out || e.message}`);
  }
}

// Cross-checks: the things a schema cannot see.
const sts = objects.filter((o) => o.obj.kind === "StatefulSet");
const svcs = objects.filter((o) => o.obj.kind === "Service");
const check = (cond, msg) => { if (!cond) problems.push(msg); };
for (const { where, obj } of sts) {
  const spec = obj.spec;
  const pod = spec.template.spec;
  const labels = spec.template.metadata?.labels ?? {};
  const sel = spec.selector.matchLabels ?? {};
  for (const [k, v] of Object.entries(sel)) {
    check(labels[k] === v, `${where}: selector ${k}=${v} does not match the pod labels`);
  }
  const svc = svcs.find((s) => s.obj.metadata.name === spec.serviceName);
  check(svc, `${where}: serviceName ${spec.serviceName} has no Service in these files`);
  if (svc) {
    check(svc.obj.spec.clusterIP === "None", `${svc.where}: the StatefulSet's governing Service must be headless`);
    for (const [k, v] of Object.entries(svc.obj.spec.selector ?? {})) {
      check(labels[k] === v, `${svc.where}: selector ${k}=${v} selects no pod of ${where}`);
    }
  }
  check(pod.terminationGracePeriodSeconds >= 15,
        `${where}: terminationGracePeriodSeconds must exceed drain timeout (5s) + final snapshot`);
  check(pod.securityContext?.runAsNonRoot === true, `${where}: runAsNonRoot must be true`);
  check(pod.securityContext?.runAsUser === 10001, `${where}: runAsUser must be the image's uid 10001`);
  check(pod.securityContext?.fsGroup === 10001, `${where}: fsGroup must be the image's gid 10001`);
  const claims = (spec.volumeClaimTemplates ?? []).map((c) => c.metadata.name);
  const c = pod.containers.find((x) => x.name === "countersd");
  check(c, `${where}: no container named countersd`);
  if (!c) continue;
  check(c.securityContext?.readOnlyRootFilesystem === true, `${where}: readOnlyRootFilesystem must be true`);
  const port = (c.ports ?? []).find((p) => p.containerPort === 50051);
  check(port, `${where}: containerPort 50051 missing`);
  // A native grpc probe on 50051, or (with TLS on 50051, which the
  // kubelet's grpc probe cannot speak) `counterctl ... health` in the pod.
  for (const probe of ["livenessProbe", "readinessProbe"]) {
    const cmd = c[probe]?.exec?.command ?? [];
    check(c[probe]?.grpc?.port === 50051 || (cmd[0] === "counterctl" && cmd.includes("health")),
          `${where}: ${probe} must be a grpc probe on port 50051 or counterctl health`);
  }
  check(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where}: resource requests missing`);
  check(c.resources?.limits?.memory, `${where}: memory limit missing`);
  const data = (c.volumeMounts ?? []).find((m) => m.mountPath === "/var/lib/countersd");
  check(data && claims.includes(data.name),
        `${where}: /var/lib/countersd must be mounted from a volumeClaimTemplate`);
}
check(sts.length === 1, `expected exactly one StatefulSet, found ${sts.length}`);

// The metrics port: a container port named `metrics` that the daemon listens
// on (COUNTERSD_METRICS_LISTEN or --metrics-listen), the scrape annotations
// naming it; --handlers from the CPU limit, rounded up to whole CPUs.
const metricsPort = 50052;
for (const { where, obj } of sts) {
  const tmpl = obj.spec.template;
  const c = tmpl.spec.containers.find((x) => x.name === "countersd");
  if (!c) continue;
  const port = (c.ports ?? []).find((p) => p.name === "metrics");
  check(port?.containerPort === metricsPort, `${where}: container port "metrics" must be ${metricsPort}`);
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
  const listenArg = (c.args ?? []).find((a) => a.startsWith("--metrics-listen="));
  const listen = listenArg ? listenArg.split("=")[1] : env.COUNTERSD_METRICS_LISTEN?.value;
  check(listen === `0.0.0.0:${metricsPort}`,
        `${where}: the daemon must serve metrics on 0.0.0.0:${metricsPort} (COUNTERSD_METRICS_LISTEN), got ${listen}`);
  const ann = tmpl.metadata?.annotations ?? {};
  check(ann["prometheus.io/scrape"] === "true" && ann["prometheus.io/port"] === String(metricsPort) &&
        ann["prometheus.io/path"] === "/metrics",
        `${where}: pod template needs prometheus.io/scrape "true", port "${metricsPort}", path /metrics`);
  const handlers = env.COUNTERSD_HANDLERS?.valueFrom?.resourceFieldRef;
  check(handlers?.resource === "limits.cpu" && String(handlers?.divisor) === "1" &&
        (handlers?.containerName ?? c.name) === c.name,
        `${where}: COUNTERSD_HANDLERS must come from limits.cpu with divisor 1`);
  check(c.resources?.limits?.cpu, `${where}: a CPU limit is needed for COUNTERSD_HANDLERS`);
  check(!(c.args ?? []).some((a) => a.startsWith("--handlers")),
        `${where}: --handlers in args would override COUNTERSD_HANDLERS`);
}

// PodDisruptionBudgets select the StatefulSet's pods and allow a drain.
for (const { where, obj } of objects.filter((o) => o.obj.kind === "PodDisruptionBudget")) {
  const sel = obj.spec.selector?.matchLabels ?? {};
  const hits = sts.filter((s) => Object.entries(sel).every(
    ([k, v]) => (s.obj.spec.template.metadata?.labels ?? {})[k] === v));
  check(Object.keys(sel).length && hits.length, `${where}: selector selects no StatefulSet's pods`);
  for (const s of hits) {
    const replicas = s.obj.spec.replicas ?? 1;
    const min = obj.spec.minAvailable;
    check(obj.spec.maxUnavailable >= 1 || (typeof min === "number" && min < replicas),
          `${where}: it must let a drain evict a pod of ${s.where} (replicas ${replicas})`);
  }
}
check(objects.some((o) => o.obj.kind === "PodDisruptionBudget"), "no PodDisruptionBudget");

// ServiceMonitors (monitoring.coreos.com/v1): only the fields used here,
// each checked against the Service it selects.
for (const { where, obj } of byHand.ServiceMonitor) {
  check(obj.apiVersion === "monitoring.coreos.com/v1", `${where}: apiVersion must be monitoring.coreos.com/v1`);
  const unknown = (o, keys, at) => Object.keys(o ?? {}).filter((k) => !keys.includes(k))
    .forEach((k) => problems.push(`${where}: unknown field ${at}${k}`));
  unknown(obj, ["apiVersion", "kind", "metadata", "spec"], "");
  unknown(obj.spec, ["selector", "endpoints", "namespaceSelector", "jobLabel"], "spec.");
  const sel = obj.spec?.selector?.matchLabels ?? {};
  const svc = svcs.filter((s) => Object.keys(sel).length && Object.entries(sel).every(
    ([k, v]) => (s.obj.metadata.labels ?? {})[k] === v));
  check(svc.length, `${where}: selector matches no Service's labels`);
  for (const [i, ep] of (obj.spec?.endpoints ?? []).entries()) {
    unknown(ep, ["port", "path", "interval", "scrapeTimeout", "scheme"], `spec.endpoints[${i}].`);
    for (const s of svc) {
      const sp = (s.obj.spec.ports ?? []).find((p) => p.name === ep.port);
      check(sp, `${where}: endpoint port ${ep.port} is not a port of ${s.where}`);
      check(!sp || sp.port === metricsPort, `${where}: ${s.where} port ${ep.port} must be ${metricsPort}`);
    }
  }
  check((obj.spec?.endpoints ?? []).length, `${where}: no endpoints`);
}

// The kustomization: every resource exists and was checked here, every other
// manifest of its folder is listed or optional (a ServiceMonitor), and its
// `images` entry names the StatefulSet's image, so `kustomize edit set image`
// sets it.
for (const { where, obj, file } of byHand.Kustomization) {
  check(obj.apiVersion === "kustomize.config.k8s.io/v1beta1", `${where}: apiVersion must be kustomize.config.k8s.io/v1beta1`);
  Object.keys(obj).filter((k) => !["apiVersion", "kind", "resources", "images"].includes(k))
    .forEach((k) => problems.push(`${where}: unexpected field ${k}`));
  const dir = dirname(resolve(file));
  const listed = (obj.resources ?? []).map((r) => resolve(dir, r));
  for (const r of listed) {
    check(existsSync(r), `${where}: resource ${r} does not exist`);
    check(checkedFiles.includes(r), `${where}: resource ${r} was not among the files checked`);
  }
  for (const f of checkedFiles.filter((f) => dirname(f) === dir && f !== resolve(file))) {
    const optional = byHand.ServiceMonitor.some((m) => resolve(m.file) === f);
    check(listed.includes(f) || optional, `${where}: ${basename(f)} is not in resources`);
    check(!(listed.includes(f) && optional), `${where}: ${basename(f)} needs the operator's CRDs: keep it optional`);
  }
  for (const { where: sw, obj: so } of sts) {
    const image = so.spec.template.spec.containers.find((x) => x.name === "countersd")?.image ?? "";
    const name = image.replace(/@.*$/, "").replace(/:[^/:]*$/, "");
    check((obj.images ?? []).some((i) => i.name === name),
          `${where}: no images entry named ${name}, the image of ${sw}`);
  }
}
check(byHand.Kustomization.length === 1, `expected one kustomization.yaml, found ${byHand.Kustomization.length}`);

for (const p of problems) console.log(`k8s: ${p}`);
const handChecked = byHand.Kustomization.length + byHand.ServiceMonitor.length;
console.log(`k8s: ${objects.length + handChecked} object(s) checked, ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);
