// The public verification page (GET /verify): reads a certificate from the link's fragment
// (#vc=<base64url(zlib(JSON))> or #sd=<SD-JWT>, what a QR code holds), from the text box or
// from a file, asks this node's POST /credentials/verify, and says the answer in words.
// An offline proof bundle (what `citychain vc bundle` writes) is checked twice: its proofs
// as they stand (POST /bundles/verify: valid as of its block?) and the credential inside it
// against the chain now; the verdict is today's, the bundle's answer one of the facts.
// No framework and nothing from another host: the page must work on a city network with no
// internet, on any phone.
"use strict";

const WORDS = {
  // code of a 4xx answer of POST /credentials/verify -> [class, verdict, what it means]
  credential_revoked: ["bad", "Revoked",
    "The issuer has revoked this certificate: it is no longer valid."],
  credential_suspended: ["warn", "Suspended",
    "The issuer has suspended this certificate for now."],
  credential_expired: ["bad", "Expired", "This certificate is past its validity date."],
  not_yet_valid: ["warn", "Not yet valid", "This certificate is valid only from a later date."],
  issuer_not_trusted: ["bad", "Not issued by a trusted issuer",
    "Whoever signed this is not in the city's register of issuers for this kind of certificate."],
  tampered: ["bad", "Not genuine",
    "The certificate was changed after it was issued, or its signature is not the issuer's."],
  wrong_key: ["bad", "Not genuine", "It was not signed with a key of the issuer it names."],
  key_not_authorized: ["bad", "Not genuine",
    "It was signed with a key the issuer does not use for certificates."],
  did_deactivated: ["bad", "Issuer closed",
    "The issuer's identity on the chain has been closed; it issues nothing more."],
  did_not_found: ["bad", "Unknown issuer", "The issuer it names does not exist on this chain."],
  schema_violation: ["bad", "Not a valid certificate",
    "Its contents do not follow the form of this kind of certificate."],
  invalid_credential: ["bad", "Not a certificate", "This is not a verifiable credential."],
  unknown_context: ["bad", "Not a certificate",
    "It uses a vocabulary this city's verifier does not know."],
};
const FALLBACK = ["bad", "Cannot be checked", ""];
const BUNDLE = "citychain-offline-proof-bundle/1";

function $(id) { return document.getElementById(id); }

function show(kind, verdict, explain, facts) {
  const box = $("result");
  box.className = "result " + kind;
  $("verdict").textContent = verdict;
  $("explain").textContent = explain;
  const dl = $("facts");
  dl.replaceChildren();
  for (const [name, value] of facts) {
    if (!value) continue;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dl.append(dt, dd);
  }
  box.hidden = false;
  box.dataset.verdict = verdict;
}

function b64urlBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return await new Response(stream).text();
}

// A credential from a link's fragment, a pasted link, JSON text or an SD-JWT.
async function parseCredential(text) {
  text = text.trim();
  const hash = text.indexOf("#");
  const fragment = text.startsWith("#") ? text.slice(1)
    : /^https?:\/\//.test(text) && hash >= 0 ? text.slice(hash + 1) : null;
  if (fragment !== null) {
    if (fragment.startsWith("sd=")) return fragment.slice(3);
    if (fragment.startsWith("vc=")) return JSON.parse(await inflate(b64urlBytes(fragment.slice(3))));
    throw new Error("the link carries no certificate");
  }
  if (text.startsWith("{")) return JSON.parse(text);
  if (/^[A-Za-z0-9_\-.~=]+$/.test(text) && text.includes("~")) return text;
  throw new Error("this is neither a certificate's JSON nor an SD-JWT");
}

function issuerOf(credential) {
  if (typeof credential !== "object" || credential === null) return "";
  const issuer = credential.issuer;
  return typeof issuer === "string" ? issuer : issuer && issuer.id ? issuer.id : "";
}

function typeOf(credential) {
  if (typeof credential !== "object" || credential === null) return "";
  const types = [].concat(credential.type || []).filter((t) => t !== "VerifiableCredential");
  return types.join(", ");
}

async function check(credential, more = []) {
  show("", "Checking…", "", []);
  let answer, body;
  try {
    answer = await fetch("/credentials/verify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ verifiableCredential: credential }),
    });
    body = await answer.json();
  } catch (err) {
    show("bad", "Cannot be checked", "The node did not answer: " + err.message, []);
    return;
  }
  const facts = [
    ["Issued by", body.issuerName ? body.issuerName + " (" + (body.issuer || issuerOf(credential)) + ")"
      : body.issuer || issuerOf(credential)],
    ["Kind", body.credentialType || typeOf(credential)],
    ["Valid from", body.validFrom || (credential && credential.validFrom) || ""],
    ["Valid until", body.validUntil || (credential && credential.validUntil) || ""],
    ...more,
  ];
  if (answer.ok && body.verified === true) {
    // Say only what was checked: an SD-JWT carries no status entry.
    const checked = Array.isArray(body.checks) && body.checks.includes("status");
    show("good", "Valid", "Genuine, " + (checked ? "not revoked or suspended, " : "") +
      "and issued by an office the city trusts for this kind of certificate.", facts);
    return;
  }
  const [kind, verdict, explain] = WORDS[body.code] || FALLBACK;
  show(kind, verdict, explain || body.message || "The node refused it.",
    [...facts, ["Reason", body.message || ""]]);
}

// An offline proof bundle's own answer, in one line: the node checks the file's exact bytes
// (a bundle is refused if any byte of it changed).
async function bundleFact(raw) {
  let body;
  try {
    const answer = await fetch("/bundles/verify", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: raw,
    });
    body = await answer.json();
  } catch (err) {
    return "cannot be checked: the node did not answer (" + err.message + ")";
  }
  if (body.verified === true) {
    return "holds: valid as of block " + body.height + " (" + body.asOf + ")";
  }
  return "does not hold: " + (body.message || body.code || "refused");
}

async function checkText(text, exact) {
  let credential;
  try {
    credential = await parseCredential(text);
  } catch (err) {
    show("bad", "Not a certificate", "What was given cannot be read: " + err.message, []);
    return;
  }
  if (credential && typeof credential === "object" && credential.version === BUNDLE) {
    show("", "Checking…", "", []);
    // A file's bytes as they are; pasted text without the blank lines a paste may add.
    const fact = await bundleFact(exact ? text : text.trim());
    await check(credential.credential, [["Offline proof in this file", fact]]);
    return;
  }
  await check(credential);
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    checkText($("credential").value);
  });
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (file) await checkText(await file.text(), true);
  });
  if (location.hash.length > 1) checkText(location.hash);
});
