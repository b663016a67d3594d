// Schema-checks Kubernetes manifests against the Kubernetes OpenAPI schemas
// shipped in the npm package kubernetes-models, twice:
//  - the package's compiled JSON-schema validators (types, required fields,
//    formats; they let unknown fields through, as the schemas do), and
//  - its TypeScript types, with each manifest as an object literal checked by
//    `tsc --strict`: excess-property checks reject every unknown or
//    misspelt field, as `kubectl apply --validate=strict` does.
// Then it checks that the manifests agree with each other and with the image
// (deploy/Dockerfile: uid/gid 10001, port 50051, data in /var/lib/countersd).
//
//   node validate-k8s.mjs FILE.yaml...
//
// Prints one line per problem and exits 1 if there is any, 0 otherwise.
// Run from a directory whose node_modules has the packages of package.json
// (run.sh sets NODE_PATH-equivalent by running it from there).
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const require = createRequire(import.meta.url);
const problems = [];
const objects = [];

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
    const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
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

for (const p of problems) console.log(`k8s: ${p}`);
console.log(`k8s: ${objects.length} object(s) checked, ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);
