// The citizen's view (GET /my-data): who accessed records about me, when and for what purpose.
//
// The citizen chooses their key file (a JWE made by `citychain wallet export-key`:
// PBES2-HS512+A256KW, A256GCM, holding an Ed25519 private JWK) and types its passphrase. The
// page opens it with WebCrypto alone (PBKDF2-SHA-512, AES key unwrap, AES-GCM), keeps the key
// in memory (never stored, never sent), derives the did:key and its subject tag
// (SHA-256("citychain/data/subject\0" + did), as the chain computes it), and reads
//   GET /v1/data/subjects/{tag}/accesses   (page by page)  and   .../records
// with requests it signs itself: RFC 9421, covering "@method" and "@target-uri", with created,
// expires, nonce, keyid "ed25519:<hex>", alg "ed25519" and tag "citychain", as the SDK signs
// them. Departments are named from GET /v1/gov/orgs. No framework, nothing from another host.
"use strict";

const ALG = "PBES2-HS512+A256KW";
const ENC = "A256GCM";
const PAGE = 200; // the most entries one signed read returns
const MAX_PAGES = 50; // 10,000 accesses: more than any person's, and a bound on the loop
const WHAT = {
  request: "asked for access",
  granted: "was granted access",
  refused: "was refused access",
  download: "downloaded it",
  revoked: "lost its access (revoked)",
};
const utf8 = new TextEncoder();

class Refusal extends Error {}

function $(id) { return document.getElementById(id); }

function fromB64url(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) {
    throw new Refusal("not base64url");
  }
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function b64(bytes) { return btoa(String.fromCharCode(...bytes)); }

function b64url(bytes) {
  return b64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function hex(bytes) { return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""); }

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

const B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

// base58btc (the did:key alphabet): base 256 to base 58, leading zero bytes as "1".
function base58btc(bytes) {
  const digits = [];
  for (const byte of bytes) {
    let carry = byte;
    for (let i = 0; i < digits.length; i++) {
      carry += digits[i] * 256;
      digits[i] = carry % 58;
      carry = Math.floor(carry / 58);
    }
    while (carry > 0) { digits.push(carry % 58); carry = Math.floor(carry / 58); }
  }
  let out = "";
  for (const byte of bytes) { if (byte !== 0) break; out += "1"; }
  for (let i = digits.length - 1; i >= 0; i--) out += B58[digits[i]];
  return out;
}

// The key in a key file, or a Refusal saying in words what is wrong.
async function openKeyFile(text, passphrase) {
  const parts = text.trim().split(".");
  if (parts.length !== 5) {
    throw new Refusal("This is not a key file (a key file is five parts joined by dots).");
  }
  let header, wrapped, iv, ciphertext, tag, salt;
  try {
    header = JSON.parse(new TextDecoder().decode(fromB64url(parts[0])));
    [wrapped, iv, ciphertext, tag] = parts.slice(1).map(fromB64url);
    salt = fromB64url(header.p2s);
  } catch {
    throw new Refusal("This is not a key file (its parts cannot be read).");
  }
  if (header.alg !== ALG || header.enc !== ENC) {
    throw new Refusal("This is not a key file of a citychain wallet (" + ALG + ", " + ENC + ").");
  }
  if (!Number.isInteger(header.p2c) || header.p2c < 1000 || header.p2c > 10000000) {
    throw new Refusal("This key file asks for an unreasonable amount of work to open.");
  }
  const base = await crypto.subtle.importKey("raw", utf8.encode(passphrase), "PBKDF2", false,
    ["deriveKey"]);
  const kek = await crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-512", salt: concat(utf8.encode(ALG), [0], salt),
      iterations: header.p2c },
    base, { name: "AES-KW", length: 256 }, false, ["unwrapKey"]);
  let jwk;
  try {
    const cek = await crypto.subtle.unwrapKey("raw", wrapped, kek, "AES-KW", "AES-GCM", false,
      ["decrypt"]);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv, additionalData: utf8.encode(parts[0]), tagLength: 128 },
      cek, concat(ciphertext, tag));
    jwk = JSON.parse(new TextDecoder().decode(plain));
  } catch {
    throw new Refusal("Wrong passphrase (or the key file was changed).");
  }
  if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.d !== "string") {
    throw new Refusal("This key file holds no Ed25519 key.");
  }
  const key = await crypto.subtle.importKey(
    "jwk", { kty: "OKP", crv: "Ed25519", x: jwk.x, d: jwk.d }, { name: "Ed25519" }, false,
    ["sign"]);
  const pub = fromB64url(jwk.x);
  return { key, pub, did: "did:key:z" + base58btc(concat([0xed, 0x01], pub)) };
}

// GET path, signed with the citizen's key (RFC 9421, see the top of this file).
async function signedGet(me, path) {
  const created = Math.floor(Date.now() / 1000);
  const nonce = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const params = '("@method" "@target-uri");created=' + created + ";expires=" + (created + 60) +
    ';nonce="' + nonce + '";keyid="ed25519:' + hex(me.pub) + '";alg="ed25519";tag="citychain"';
  const base = '"@method": GET\n"@target-uri": ' + location.origin + path +
    '\n"@signature-params": ' + params;
  const signature = new Uint8Array(await crypto.subtle.sign("Ed25519", me.key, utf8.encode(base)));
  const answer = await fetch(path, {
    headers: { "Signature-Input": "citychain=" + params,
               "Signature": "citychain=:" + b64(signature) + ":" },
  });
  const body = await answer.json();
  if (!answer.ok) {
    throw new Refusal("The node refused: " + (body.message || body.code || answer.status));
  }
  return body.result;
}

async function orgNames() {
  try {
    const answer = await fetch("/v1/gov/orgs");
    const body = await answer.json();
    return new Map(body.orgs.map((o) => [o.id, o.name]));
  } catch {
    return new Map();
  }
}

function when(ms) {
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
}

function say(text, bad) {
  $("status").textContent = text;
  $("status").className = "status" + (bad ? " bad" : "");
  $("answer").hidden = false;
}

async function show(me) {
  const tag = hex(new Uint8Array(await crypto.subtle.digest(
    "SHA-256", concat(utf8.encode("citychain/data/subject\0"), utf8.encode(me.did)))));
  const base = "/v1/data/subjects/" + tag;
  const accesses = [];
  let after = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    const got = await signedGet(me, base + "/accesses?after=" + after + "&limit=" + PAGE);
    accesses.push(...got);
    if (got.length < PAGE) break;
    after = got[got.length - 1].seq;
  }
  const records = await signedGet(me, base + "/records");
  const names = await orgNames();
  const body = $("accesses").tBodies[0];
  body.replaceChildren();
  for (const e of accesses) {
    const row = document.createElement("tr");
    row.dataset.action = e.action;
    cell(row, when(e.time));
    cell(row, e.org ? (names.get(e.org) || e.org) + " (" + e.org + ")" : "you");
    cell(row, WHAT[e.action] || e.action);
    cell(row, (e.title ? e.title + " " : "") + "(" + e.code + ")");
    cell(row, e.purpose || "");
    body.append(row);
  }
  const list = $("records");
  list.replaceChildren(...records.map((code) => {
    const li = document.createElement("li");
    li.textContent = code;
    return li;
  }));
  $("who").textContent = "Signed in as " + me.did;
  $("accesses").hidden = $("accesses-title").hidden = accesses.length === 0;
  $("records-title").hidden = records.length === 0;
  say(accesses.length === 0 ? "No one has accessed records about you."
    : accesses.length + (accesses.length === 1 ? " access" : " accesses") +
      " to records about you, oldest first.", false);
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("keyfile").files[0];
    if (!file) { say("Choose your key file first.", true); return; }
    say("Opening your key…", false);
    try {
      const me = await openKeyFile(await file.text(), $("passphrase").value);
      say("Reading the chain…", false);
      await show(me);
    } catch (err) {
      $("accesses").hidden = $("accesses-title").hidden = $("records-title").hidden = true;
      $("records").replaceChildren();
      $("who").textContent = "";
      say(err instanceof Refusal ? err.message : "Something went wrong: " + err.message, true);
    }
  });
});
