package import Foundation
import CoreFoundation

/// GBK text through CoreFoundation's GB 18030 converter (a superset of GBK and GB 2312),
/// which swift-corelibs-foundation provides on Linux. Only display text goes through here:
/// signatures are checked over the raw bytes, and identifiers and amounts are ASCII,
/// identical in both charsets.
package enum GBK {
    package static let encoding = String.Encoding(
        rawValue: CFStringConvertEncodingToNSStringEncoding(CFStringEncoding(CFStringEncodings.GB_18030_2000.rawValue))
    )

    package static func decode(_ bytes: [UInt8]) -> String? {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        return String(data: Data(bytes), encoding: encoding)
    }

    package static func encode(_ text: String) -> [UInt8]? {
        guard let data = text.data(using: encoding) else { return nil }
        return Array(data)
    }
}
