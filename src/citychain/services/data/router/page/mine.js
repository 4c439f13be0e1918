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
// them. Departments are named from GET /v1/gov/orgs, resources from the public catalogue.
//
// The citizen may also ask for a copy of the records a resource holds about them: the page
// builds the `data.request_access` transaction the SDK builds (`client.data.request_access`
// with `subject` = their did:key), in citychain's canonical CBOR (below), signs it with the
// key, submits it (POST /v1/tx) and reads its receipt with a signed read (the call is private).
// Once granted (and the key wrapped for them), the page downloads the copy as the SDK's
// `client.data.download` does: the data key unwrapped with the X25519 twin of the citizen's
// key, `data.record_access` sent, the manifest and ciphertext read signed, every chunk opened
// with AES-256-GCM and the whole checked against the plaintext hash the chain anchored. Only
// then is the file offered to save. No framework, nothing from another host.
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
// What the request asks for, as the SDK's `request_args` and `DATA_GAS_LIMIT` make it.
const DATA_GAS_LIMIT = 5000000;
const MAX_PURPOSE = 1024; // characters (the contract's MAX_TEXT)
const DAY_MS = 86400000;
const ANSWER_WAIT_MS = 60000; // how long the page waits for the block that takes a request
// The data directory's envelope (citychain.crypto.envelope), aes-256-gcm (an Ed25519 chain's).
const WRAP_TAG = "citychain/data-key-wrap/v1/aes-256-gcm/";
const CHUNK_TAG = "citychain/blob-chunk/v1";
const GCM_TAG = 16;
const WRAPPED_SIZE = 1 + 32 + 32 + GCM_TAG; // version, ephemeral X25519 key, sealed key, tag
// The largest copy the page opens in memory (a phone's); a larger file is the app's to fetch.
const MAX_PAGE_FILE = 256 * 1024 * 1024;
// PKCS #8 of an X25519 private key, before its 32 bytes (RFC 8410).
const X25519_PKCS8 = Uint8Array.of(0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b,
  0x65, 0x6e, 0x04, 0x22, 0x04, 0x20);
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
  const box = await x25519Twin(fromB64url(jwk.d));
  const did = "did:key:z" + base58btc(concat([0xed, 0x01], pub));
  // The subject tag the chain lists records under: SHA-256("citychain/data/subject\0" + did).
  const subject = await sha256(concat(utf8.encode("citychain/data/subject\0"),
    utf8.encode(did)));
  return { key, pub, did, tag: subject, box };
}

// The X25519 twin of an Ed25519 seed, as libsodium's crypto_sign_ed25519_sk_to_curve25519
// (what citychain.crypto.envelope wraps data keys for): the clamped first half of
// SHA-512(seed). Kept as a key that only agrees secrets, with its public half.
async function x25519Twin(seed) {
  const scalar = new Uint8Array(await crypto.subtle.digest("SHA-512", seed)).slice(0, 32);
  scalar[0] &= 248;
  scalar[31] &= 127;
  scalar[31] |= 64;
  const pkcs8 = concat(X25519_PKCS8, scalar);
  const open = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, true,
    ["deriveBits"]);
  const pub = fromB64url((await crypto.subtle.exportKey("jwk", open)).x);
  const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, false,
    ["deriveBits"]);
  return { key, pub };
}

// -- canonical CBOR and transactions -------------------------------------------------------
// Written here because a page loads nothing from elsewhere (see citychain.api._pages) and a
// browser has no CBOR: the rules of tests/vectors/canonical/README.md (RFC 8949 §4.2.1 core
// deterministic encoding; null, booleans, integers, byte strings, text, arrays and maps with
// text keys; no floats; tags 2 and 3 only for integers beyond 64 bits). The tests run these
// functions in Chromium on every transaction vector of that folder, byte for byte.

const TWO64 = 1n << 64n;

function head(major, n) {
  const m = major << 5;
  if (n < 24n) return Uint8Array.of(m | Number(n));
  const [info, size] = n < 0x100n ? [24, 1] : n < 0x10000n ? [25, 2]
    : n < 0x100000000n ? [26, 4] : [27, 8];
  const out = new Uint8Array(1 + size);
  out[0] = m | info;
  for (let i = size; i > 0; i--) { out[i] = Number(n & 0xffn); n >>= 8n; }
  return out;
}

function magnitude(n) {
  let text = n.toString(16);
  if (text.length % 2) text = "0" + text;
  return Uint8Array.from(text.match(/../g), (b) => parseInt(b, 16));
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

// The canonical CBOR bytes of value: numbers must be safe integers (or BigInt), byte strings
// Uint8Array, maps plain objects.
function cbor(value) {
  if (value === null) return Uint8Array.of(0xf6);
  if (value === false) return Uint8Array.of(0xf4);
  if (value === true) return Uint8Array.of(0xf5);
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new Refusal("canonical data holds integers only, not " + value);
  }
  if (typeof value === "number" || typeof value === "bigint") {
    const n = BigInt(value);
    const [major, arg] = n >= 0n ? [0, n] : [1, -1n - n];
    if (arg < TWO64) return head(major, arg);
    const bytes = magnitude(arg);
    return concat(Uint8Array.of(0xc2 + major), head(2, BigInt(bytes.length)), bytes);
  }
  if (value instanceof Uint8Array) return concat(head(2, BigInt(value.length)), value);
  if (typeof value === "string") {
    if (!value.isWellFormed()) throw new Refusal("a text holds a lone surrogate");
    const bytes = utf8.encode(value);
    return concat(head(3, BigInt(bytes.length)), bytes);
  }
  if (Array.isArray(value)) {
    return concat(head(4, BigInt(value.length)), ...value.map(cbor));
  }
  if (typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.keys(value).map((k) => [cbor(k), cbor(value[k])]);
    entries.sort((x, y) => compareBytes(x[0], y[0]));
    return concat(head(5, BigInt(entries.length)), ...entries.flat());
  }
  throw new Refusal("canonical data cannot hold " + typeof value);
}

// A transaction's signing bytes and wire bytes (citychain.types.tx): tx holds chain_id,
// sender, nonce, expiry, contract, method, args, gas_limit and endorsements (a list of
// {public_key, signature}, empty for a citizen's request).
function txItems(tx) {
  return [tx.chain_id, tx.sender, tx.nonce, tx.expiry, tx.contract, tx.method, tx.args,
    tx.gas_limit];
}

function signingBytes(tx) {
  const items = ["citychain/tx/v1", ...txItems(tx)];
  if (tx.endorsements.length) items.push(tx.endorsements.map((e) => e.public_key));
  return cbor(items);
}

function wireBytes(tx, signature) {
  const items = [1, ...txItems(tx), signature];
  if (tx.endorsements.length) items.push(tx.endorsements.map((e) => [e.public_key, e.signature]));
  return cbor(items);
}

// The value of canonical CBOR bytes (what cbor() encodes: integers as BigInt, byte strings as
// Uint8Array, maps as plain objects), for the manifest the node sends. Canonical form is not
// re-checked here: the page compares the bytes' hash with the manifest id the chain records.
function decodeCbor(bytes) {
  let at = 0;
  const need = (n) => {
    if (n > bytes.length - at) throw new Refusal("The node's manifest is cut short.");
  };
  const arg = (info) => {
    if (info < 24) return BigInt(info);
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!size) throw new Refusal("The node's manifest is not canonical CBOR.");
    need(size);
    let n = 0n;
    for (let i = 0; i < size; i++) n = (n << 8n) | BigInt(bytes[at++]);
    return n;
  };
  const item = (depth) => {
    if (depth > 32) throw new Refusal("The node's manifest nests too deep.");
    need(1);
    const major = bytes[at] >> 5;
    const info = bytes[at++] & 31;
    if (major === 7) {
      const simple = { 20: false, 21: true, 22: null }[info];
      if (simple === undefined) throw new Refusal("The node's manifest holds a float.");
      return simple;
    }
    if (major === 6) {
      const tag = arg(info);
      if (tag !== 2n && tag !== 3n) throw new Refusal("The node's manifest holds a tag.");
      const magnitude = item(depth + 1);
      if (!(magnitude instanceof Uint8Array)) throw new Refusal("A bignum holds no bytes.");
      const n = magnitude.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
      return tag === 2n ? n : -1n - n;
    }
    const n = arg(info);
    if (major === 0) return n;
    if (major === 1) return -1n - n;
    if (major === 2 || major === 3) {
      need(Number(n));
      const raw = bytes.slice(at, at + Number(n));
      at += Number(n);
      return major === 2 ? raw : new TextDecoder("utf-8", { fatal: true }).decode(raw);
    }
    need(Number(n)); // every item takes a byte at least: a length cannot outrun the bytes
    if (major === 4) return Array.from({ length: Number(n) }, () => item(depth + 1));
    const entries = [];
    for (let i = 0; i < Number(n); i++) {
      const key = item(depth + 1);
      if (typeof key !== "string") throw new Refusal("A map key is not a text.");
      entries.push([key, item(depth + 1)]);
    }
    return Object.fromEntries(entries);
  };
  const value = item(0);
  if (at !== bytes.length) throw new Refusal("The node's manifest has bytes after its end.");
  return value;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

// -- signed reads ------------------------------------------------------------------------------

// GET path, signed with the citizen's key (RFC 9421, see the top of this file): the answer,
// once it is a success (a refusal is thrown in the node's words).
async function signedRaw(me, path) {
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
  if (!answer.ok) {
    const body = await answer.json().catch(() => ({}));
    throw new Refusal("The node refused: " + (body.message || body.code || answer.status));
  }
  return answer;
}

// The JSON body of a signed GET.
async function signedFetch(me, path) { return (await signedRaw(me, path)).json(); }

async function signedGet(me, path) { return (await signedFetch(me, path)).result; }

async function getJson(path) {
  const answer = await fetch(path);
  const body = await answer.json();
  if (!answer.ok) {
    throw new Refusal("The node refused: " + (body.message || body.code || answer.status));
  }
  return body;
}

async function orgNames() {
  try {
    return new Map((await getJson("/v1/gov/orgs")).orgs.map((o) => [o.id, o.name]));
  } catch {
    return new Map();
  }
}

function when(ms) {
  return new Date(ms).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// A cell, labelled with its column's heading for the narrow layout (mine.css: a phone shows
// each access as a card of labelled lines, not five columns of broken words).
function cell(row, text, label) {
  const td = document.createElement("td");
  td.textContent = text;
  td.dataset.label = label;
  row.append(td);
}

function say(text, bad) {
  $("status").textContent = text;
  $("status").className = "status" + (bad ? " bad" : "");
  $("answer").hidden = false;
}

// Fill the view for me; the departments' names by id (for the caller's own words).
async function show(me) {
  const base = "/v1/data/subjects/" + hex(me.tag);
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
  const catalogue = await Promise.all(records.map(resourceRecord));
  const body = $("accesses").tBodies[0];
  body.replaceChildren();
  for (const e of accesses) {
    const row = document.createElement("tr");
    row.dataset.action = e.action;
    cell(row, when(e.time), "When");
    cell(row, e.org ? (names.get(e.org) || e.org) + " (" + e.org + ")" : "you", "Department");
    cell(row, WHAT[e.action] || e.action, "What");
    cell(row, (e.title ? e.title + " " : "") + "(" + e.code + ")", "Data");
    cell(row, e.purpose || "", "Stated purpose");
    body.append(row);
  }
  const list = $("records");
  list.replaceChildren(...records.map((code, i) => {
    const li = document.createElement("li");
    li.dataset.code = code;
    const name = document.createElement("span");
    const title = catalogue[i] && catalogue[i].title;
    name.textContent = title ? title + " (" + code + ")" : code;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "ask";
    button.textContent = "Ask for a copy";
    button.addEventListener("click", () => openAsk(code, name.textContent, catalogue[i]));
    li.append(name, " ", button);
    return li;
  }));
  showCopies(ownGrants(accesses));
  $("who").textContent = "Signed in as " + me.did;
  $("accesses").hidden = $("accesses-title").hidden = accesses.length === 0;
  $("records-title").hidden = records.length === 0;
  say(accesses.length === 0 ? "No one has accessed records about you."
    : accesses.length + (accesses.length === 1 ? " access" : " accesses") +
      " to records about you, oldest first.", false);
  return names;
}

// A resource's record in the public catalogue (null if it cannot be read: the code stands).
async function resourceRecord(code) {
  try {
    return (await getJson("/v1/data/resources/" + code)).result;
  } catch {
    return null;
  }
}

// -- asking for a copy ------------------------------------------------------------------------

let signedIn = null; // the key while the page is open (never stored)
let asking = null; // the resource the form asks for: {code, title, provider}

function openAsk(code, title, record) {
  asking = { code, title, provider: record ? record.provider : "" };
  $("ask-what").textContent = title;
  $("asked").textContent = "";
  $("asked").className = "status";
  $("ask").hidden = false;
  $("purpose").focus();
}

// This node's chain, if the page can sign for it (Ed25519; WebCrypto has no SM2).
async function chain() {
  const status = await getJson("/v1/status");
  if (status.crypto_suite !== "ed25519") {
    throw new Refusal("This city's chain signs with " + status.crypto_suite + ", which a " +
      "browser cannot: use the citychain app (citychain data request, citychain data download).");
  }
  return status.chain_id;
}

// A call of the data contract signed by me on chainId (chain()), as the SDK's client.send
// builds it.
async function dataTx(me, chainId, method, args) {
  const address = (await sha256(concat(utf8.encode("citychain/address/ed25519/"), me.pub)))
    .slice(0, 20);
  const account = await getJson("/v1/accounts/" + hex(address));
  return {
    chain_id: chainId,
    sender: me.pub,
    nonce: account.pending_nonce,
    expiry: (1n << 63n) - 1n,
    contract: "data",
    method,
    args,
    gas_limit: DATA_GAS_LIMIT,
    endorsements: [],
  };
}

// The request as the SDK's request_access builds it: subject = the tag of the signer's did:key.
async function requestTx(me, code, purpose, periodMs) {
  return dataTx(me, await chain(), "request_access",
    { code, purpose, period: periodMs, subject: me.tag });
}

// Sign and submit tx, then wait for its receipt (read signed: the call is private).
async function submit(me, tx) {
  const signature = new Uint8Array(await crypto.subtle.sign("Ed25519", me.key, signingBytes(tx)));
  const sent = await fetch("/v1/tx", {
    method: "POST", headers: { "Content-Type": "application/cbor" },
    body: wireBytes(tx, signature),
  });
  const body = await sent.json();
  if (!sent.ok) {
    throw new Refusal("The node refused: " + (body.message || body.code));
  }
  const deadline = Date.now() + ANSWER_WAIT_MS;
  while (Date.now() < deadline) {
    await new Promise((done) => setTimeout(done, 500));
    const got = await signedFetch(me, "/v1/txs/" + body.hash);
    if (got.status === "committed") return got.receipt;
  }
  throw new Refusal("Sent, but no block took it within a minute: look again later (sign in " +
    "again) before trying anew.");
}

function outcome(result, title, provider) {
  if (result.state === "granted") {
    return "Granted: request " + result.request + " for " + title + " gave you access " +
      "(grant " + result.grant + "). Download your copy below once the department has " +
      "wrapped its key for you.";
  }
  if (result.state === "refused") {
    return "Refused: request " + result.request + " for " + title + ". The refusal and its " +
      "reason are in the list above.";
  }
  return "Sent: request " + result.request + " for " + title + " waits for the decision of " +
    (provider || "the department that holds it") + ". It shows in the list above once decided.";
}

async function ask(me) {
  const purpose = $("purpose").value.trim();
  if (!purpose) throw new Refusal("Say what you need the records for.");
  if (purpose.length > MAX_PURPOSE) {
    throw new Refusal("Say it in at most " + MAX_PURPOSE + " characters.");
  }
  const { code, title, provider } = asking;
  const tx = await requestTx(me, code, purpose, Number($("period").value) * DAY_MS);
  const receipt = await submit(me, tx);
  if (receipt.code !== "ok") {
    throw new Refusal("The chain refused the request: " + receipt.message);
  }
  $("ask").hidden = true;
  $("purpose").value = "";
  const names = await show(me);
  return outcome(receipt.result, title, provider && (names.get(provider) || provider));
}

// -- downloading a granted copy ---------------------------------------------------------------

function fromHex(text) {
  if (typeof text !== "string" || !/^([0-9a-f]{2})*$/.test(text)) {
    throw new Refusal("The node answered no bytes where it should have.");
  }
  return Uint8Array.from(text.match(/../g) || [], (b) => parseInt(b, 16));
}

// A byte string of the API's JSON view ({"hex": "..."}).
function bytesOf(value) { return fromHex(value && value.hex); }

function u64(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

// The data key wrapped for me (citychain.crypto.envelope.unwrap_key): X25519 with the
// ephemeral key, HKDF-SHA-256 salted with both public keys and bound to the cipher and the
// context, then AES-256-GCM with a zero nonce.
async function unwrap(me, wrapped, context) {
  if (wrapped.length !== WRAPPED_SIZE || wrapped[0] !== 1) {
    throw new Refusal("The node's wrapped key is not one this page can open.");
  }
  const cannot = new Refusal("Your key cannot open this copy's key: it was wrapped for " +
    "another key, or altered.");
  const eph = wrapped.slice(1, 33);
  let shared;
  try {
    const theirs = await crypto.subtle.importKey("raw", eph, { name: "X25519" }, false, []);
    shared = await crypto.subtle.deriveBits({ name: "X25519", public: theirs }, me.box.key, 256);
  } catch {
    throw cannot;
  }
  const ikm = await crypto.subtle.importKey("raw", shared, "HKDF", false, ["deriveKey"]);
  const kek = await crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: concat(eph, me.box.pub),
      info: concat(utf8.encode(WRAP_TAG), context) },
    ikm, { name: "AES-GCM", length: 256 }, false, ["decrypt"]);
  let raw;
  try {
    raw = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: new Uint8Array(12), additionalData: context, tagLength: 128 },
      kek, wrapped.slice(33));
  } catch {
    throw cannot;
  }
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]);
}

// The plaintext of a version's ciphertext (citychain.crypto.envelope.open_stream): chunk i
// sealed with nonce 000000 || u64 i || final and AAD naming the chunk tag, the context, i and
// final, so a chunk moved, dropped or altered does not open.
async function openChunks(sealed, manifest, key, context) {
  const count = manifest.chunks.length;
  const chunkSize = Number(manifest.chunk_size);
  const plainSize = Number(manifest.plain_size);
  if (sealed.length !== plainSize + GCM_TAG * count) {
    throw new Refusal("The node sent " + sealed.length + " bytes of ciphertext, not the " +
      (plainSize + GCM_TAG * count) + " the manifest lists: download again.");
  }
  const parts = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const final = i === count - 1 ? 1 : 0;
    const size = (final ? plainSize - chunkSize * (count - 1) : chunkSize) + GCM_TAG;
    const iv = concat(new Uint8Array(3), u64(i), [final]);
    const aad = concat(utf8.encode(CHUNK_TAG), u64(context.length), context, u64(i), [final]);
    try {
      parts.push(new Uint8Array(await crypto.subtle.decrypt(
        { name: "AES-GCM", iv, additionalData: aad, tagLength: 128 }, key,
        sealed.subarray(at, at + size))));
    } catch {
      throw new Refusal("Chunk " + i + " of the copy does not open: it was altered on its " +
        "way or in the node's store. Nothing was saved.");
    }
    at += size;
  }
  return concat(...parts);
}

// My copy of the latest version of code under grant, as client.data.download makes it: the
// key first and that the node holds every chunk (so no access is recorded that cannot be
// used), then record_access, then the manifest (its hash: the id the chain records) and
// the ciphertext, opened and checked against the plaintext hash the chain anchored.
async function fetchCopy(me, grant, code) {
  const chainId = await chain();
  const resource = "/v1/data/resources/" + code;
  const n = (await getJson(resource)).result.versions;
  if (!n) throw new Refusal("No version of " + code + " is stored yet.");
  const [version] = (await getJson(resource + "/versions?after=" + (n - 1) + "&limit=1")).result;
  if (version.cipher !== "aes-256-gcm") {
    throw new Refusal("This copy is sealed with " + version.cipher + ", which a browser " +
      "cannot open: download it with the citychain app.");
  }
  if (version.plain_size > MAX_PAGE_FILE) {
    throw new Refusal("This copy is too large for a phone's page (" + version.plain_size +
      " bytes): download it with the citychain app.");
  }
  const base = resource + "/versions/" + n;
  const context = utf8.encode("citychain/data\0" + chainId + "\0" + code);
  const key = await unwrap(me, bytesOf(await signedGet(me, base + "/key")), context);
  await getJson(base + "/stored");
  const receipt = await submit(me,
    await dataTx(me, chainId, "record_access", { grant, version: n }));
  if (receipt.code !== "ok") {
    throw new Refusal("The chain refused the download: " + receipt.message);
  }
  const access = receipt.result;
  const raw = new Uint8Array(await (await signedRaw(me, base + "/manifest?access=" + access))
    .arrayBuffer());
  if (hex(await sha256(raw)) !== hex(bytesOf(version.manifest_id))) {
    throw new Refusal("The node's manifest is not the one the chain records.");
  }
  const manifest = decodeCbor(raw);
  const sealed = new Uint8Array(await (await signedRaw(me, base + "/content?access=" + access))
    .arrayBuffer());
  const plain = await openChunks(sealed, manifest, key, context);
  if (hex(await sha256(plain)) !== hex(bytesOf(version.plain_hash))) {
    throw new Refusal("The copy does not match the hash the chain anchored. Nothing was saved.");
  }
  return { plain, version: n };
}

let saved = null; // the object URL of the last copy offered, revoked when another is

// Drop the copy last offered (its link and the memory behind it).
function forgetCopy() {
  if (saved) URL.revokeObjectURL(saved);
  saved = null;
  $("save").hidden = true;
  $("save").removeAttribute("href");
}

async function download(me, grant, code, title) {
  forgetCopy();
  const { plain, version } = await fetchCopy(me, grant, code);
  saved = URL.createObjectURL(new Blob([plain], { type: "application/octet-stream" }));
  const link = $("save");
  link.href = saved;
  link.download = "records-" + code.replace("/", "-") + "-v" + version;
  link.textContent = "Save " + link.download;
  link.hidden = false;
  await show(me);
  return "Your copy of " + title + " (version " + version + ", " + plain.length + " bytes) is " +
    "ready, checked against the hash the chain anchored.";
}

// The grants the list shows me: my own requests granted (a citizen's: no department's org).
function ownGrants(accesses) {
  return accesses.filter((e) => e.action === "granted" && !e.org).map((e) => ({
    grant: e.grant, code: e.code, title: (e.title ? e.title + " " : "") + "(" + e.code + ")",
  }));
}

function showCopies(grants) {
  $("copies").replaceChildren(...grants.map((g) => {
    const li = document.createElement("li");
    li.dataset.grant = g.grant;
    const name = document.createElement("span");
    name.textContent = g.title + ", grant " + g.grant;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "ask";
    button.textContent = "Download my copy";
    button.addEventListener("click", () => act(() => download(signedIn, g.grant, g.code, g.title)));
    li.append(name, " ", button);
    return li;
  }));
  $("copies-title").hidden = grants.length === 0;
}

// Run one of the page's actions, saying in #asked how it went.
async function act(work) {
  $("asked").className = "status";
  $("asked").textContent = "Working…";
  try {
    $("asked").textContent = await work();
  } catch (err) {
    $("asked").className = "status bad";
    $("asked").textContent = err instanceof Refusal ? err.message
      : "Something went wrong: " + err.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("send").disabled = true;
    await act(() => ask(signedIn));
    $("send").disabled = false;
  });
  $("cancel").addEventListener("click", () => { $("ask").hidden = true; });
  $("signin").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = $("keyfile").files[0];
    if (!file) { say("Choose your key file first.", true); return; }
    say("Opening your key…", false);
    try {
      // Whoever signs in next sees nothing of the last person: their key, list and copy go.
      signedIn = null;
      forgetCopy();
      $("ask").hidden = true;
      $("asked").textContent = "";
      const me = await openKeyFile(await file.text(), $("passphrase").value);
      say("Reading the chain…", false);
      await show(me);
      signedIn = me;
    } catch (err) {
      $("accesses").hidden = $("accesses-title").hidden = $("records-title").hidden = true;
      $("copies-title").hidden = true;
      $("records").replaceChildren();
      $("copies").replaceChildren();
      $("who").textContent = "";
      say(err instanceof Refusal ? err.message : "Something went wrong: " + err.message, true);
    }
  });
});
