// Package envelope is dsar's encryption at rest, envelope style: each
// request gets its own random data key, which encrypts that request's
// fields (Seal, Open) and export packages (NewWriter, NewReader) with
// AES-256-GCM; the data key is stored only wrapped (encrypted) under a
// master key from a Keyring. It uses the standard library only (crypto/aes,
// crypto/cipher, crypto/rand, crypto/hkdf, crypto/sha256).
//
// store/sealedstore uses it to seal the personal fields of every request.
//
// # What it promises
//
//   - Confidentiality: without the data key (so without a master key and
//     the request's Wrapped), a sealed field or stream reveals nothing but
//     its length.
//   - Integrity: any change to a ciphertext (a flipped bit, a cut, a
//     segment moved, repeated or dropped, data added at the end) makes Open
//     or the stream Reader fail (ErrAuth or ErrTruncated); a Reader never
//     returns unauthenticated plaintext and never ends a cut stream with a
//     plain io.EOF.
//   - Binding: a ciphertext opens only with the aad it was sealed with. The
//     caller chooses it; use the request id and the field name (for
//     example "req_123\x00subject.email"), so a value copied to another
//     request or field fails. The aad is not stored.
//   - Crypto-shredding: deleting a request's Wrapped makes its ciphertexts
//     unreadable, backups included, while its other records remain.
//   - Rotation: a Keyring holds several master keys; the first (active)
//     wraps, all unwrap, Rewrap moves a Wrapped to the active key. A
//     removed key makes Unwrap fail with ErrUnknownKey naming its id.
//   - Errors name key ids, entry numbers and segment numbers, never key
//     bytes, plaintext or aad; printing a Keyring or DataKey with any fmt
//     verb shows ids only.
//
// # What it does not do
//
//   - No key escrow, recovery or KMS: master keys live in the environment
//     (DSAR_MASTER_KEYS) or in a key file (LoadOrCreateKeyFile,
//     for dsar dev). Losing them loses every data key wrapped under them.
//   - It does not hide lengths, or which requests have how many fields.
//   - Destroy zeroes a data key's bytes in this process as best effort; Go
//     may hold copies (the AES key schedule), so only deleting the Wrapped
//     shreds.
//   - Lookups by identity must keep using the keyed blind index (an HMAC);
//     ciphertexts are randomised and cannot be searched.
//
// # Formats
//
// Master keys (DSAR_MASTER_KEYS, or one entry a line in master.keys):
//
//	id:base64key[,id:base64key...]    id: [a-z0-9_-]{1,32}, unique; key: 32 bytes, std or URL base64
//
// Wrapped data key: Wrapped{KeyID, Ciphertext}, with
//
//	Ciphertext = 0x01 | nonce (12) | AES-256-GCM(master key, data key (32)) | tag (16)    61 bytes
//	AAD        = "dsar/envelope/v1/data-key\x00" | KeyID
//
// and Wrapped.Encode gives "KeyID:base64url(Ciphertext)" for a text column.
//
// Sealed field (Seal, Open), SealOverhead = 29 bytes more than the
// plaintext:
//
//	0x01 | nonce (12, random) | AES-256-GCM(data key, plaintext) | tag (16)
//	AAD = 0x01 | aad
//
// Stream (NewWriter, NewReader), for export packages of any size in
// constant memory:
//
//	header  = 0x02 | salt (32, random) | nonce prefix (7, random)            StreamHeaderSize = 40 bytes
//	key     = HKDF-SHA256(data key, salt, "dsar/envelope/v1/stream\x00" | aad), 32 bytes
//	segment i = AES-256-GCM(key, nonce_i, plaintext_i) | tag (16)
//	nonce_i = prefix | i (uint32, big-endian) | 0x01 if last else 0x00
//
// Every segment holds SegmentSize (64 KiB) of plaintext except the last,
// which holds 0 to SegmentSize (0 only for an empty stream). The
// ciphertext is 40 + n + 16*max(1, ceil(n/64KiB)) bytes for n bytes.
//
// # Wiring it (a later change)
//
// A store creates a DataKey with the request (NewDataKey), stores
// Keyring.Wrap's result (Wrapped.Encode) in the request's row or document,
// seals each personal field with aad = request id | field name, and writes
// exports through NewWriter with aad = request id | export id. Reading
// unwraps once per request. Purging destroys the in-memory key and deletes
// the Wrapped. Rotation walks every Wrapped through Keyring.Rewrap and
// stores those with changed true.
package envelope
