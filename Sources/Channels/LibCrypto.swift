import CLibCrypto

// The system's OpenSSL 3 (libcrypto) does the two operations it does faster than
// swift-crypto here; everything else (verifying, hashing, HMAC, key parsing) stays on
// swift-crypto.

/// RSA PKCS#1 v1.5 signing. Every Alipay and WeChat Pay callback costs the workers one
/// signature (the signed order query), which made signing their largest cost; libcrypto
/// signs about 2.3 times as fast as swift-crypto's BoringSSL here (`swift run -c release
/// ChannelBenchmark` prints both). Verifying, where BoringSSL is the faster, stays on it.
///
/// The key is never changed after it is loaded, and OpenSSL lets threads sign with one key
/// at once, so the signer is shared freely.
final class LibCryptoSigner: @unchecked Sendable {
    enum Digest { case sha256, sha1 }

    private let key: OpaquePointer  // EVP_PKEY

    /// nil when libcrypto cannot read the DER (PKCS#1 or PKCS#8).
    init?(privateKeyDER der: [UInt8]) {
        let key: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor = buffer.baseAddress
            return d2i_AutoPrivateKey(nil, &cursor, buffer.count)
        }
        guard let key else { return nil }
        self.key = key
    }

    deinit { EVP_PKEY_free(key) }

    /// The signature, or nil when libcrypto fails (it does not with a key it has loaded).
    func sign(_ message: UnsafeRawBufferPointer, digest: Digest) -> [UInt8]? {
        guard let context = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestSignInit(context, nil, digest == .sha256 ? EVP_sha256() : EVP_sha1(), nil, key) == 1 else { return nil }
        var signature = [UInt8](repeating: 0, count: Int(EVP_PKEY_get_size(key)))
        var length = signature.count
        let signed = signature.withUnsafeMutableBufferPointer { out in
            EVP_DigestSign(context, out.baseAddress, &length, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        }
        guard signed == 1, length <= signature.count else { return nil }
        signature.removeLast(signature.count - length)
        return signature
    }
}

/// AES-256-GCM decryption (WeChat Pay's notify resources). swift-crypto's `AES.GCM.open`
/// with associated data goes through unspecialized generic code that costs several times
/// the cipher itself; this is one context and five calls.
enum LibCryptoAESGCM {
    /// Fetched once: an implicit fetch per call would look the cipher up in the provider.
    private static let cipher = FetchedCipher(name: "AES-256-GCM")

    /// The plaintext, or nil when the tag does not authenticate (or the input cannot be
    /// AES-256-GCM: a key that is not 32 bytes, a nonce that is not 12, no room for the tag).
    static func open(key: UnsafeRawBufferPointer, nonce: UnsafeBufferPointer<UInt8>, ciphertextAndTag sealed: UnsafeBufferPointer<UInt8>,
                     associatedData: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        guard key.count == 32, nonce.count == 12, sealed.count >= 16, sealed.count < Int(Int32.max), associatedData.count < Int(Int32.max),
            let cipher = cipher.pointer, let context = EVP_CIPHER_CTX_new()
        else { return nil }
        defer { EVP_CIPHER_CTX_free(context) }
        let count = sealed.count - 16
        let tag = UnsafeMutableRawPointer(mutating: sealed.baseAddress! + count)
        guard EVP_DecryptInit_ex2(context, cipher, key.baseAddress?.assumingMemoryBound(to: UInt8.self), nonce.baseAddress, nil) == 1 else { return nil }
        var length: Int32 = 0
        if associatedData.count > 0 {
            guard EVP_DecryptUpdate(context, nil, &length, associatedData.baseAddress, Int32(associatedData.count)) == 1 else { return nil }
        }
        var opened = false
        let plaintext = [UInt8](unsafeUninitializedCapacity: count + 16) { out, initialized in
            initialized = 0
            guard EVP_DecryptUpdate(context, out.baseAddress, &length, sealed.baseAddress, Int32(count)) == 1,
                EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1
            else { return }
            var final: Int32 = 0
            // Checks the tag; nothing more is written for GCM.
            guard EVP_DecryptFinal_ex(context, out.baseAddress! + Int(length), &final) == 1 else { return }
            initialized = Int(length + final)
            opened = initialized == count
        }
        return opened ? plaintext : nil
    }

    private final class FetchedCipher: @unchecked Sendable {  // read-only after init
        let pointer: OpaquePointer?
        init(name: String) { pointer = EVP_CIPHER_fetch(nil, name, nil) }
        deinit { EVP_CIPHER_free(pointer) }
    }
}
