import Foundation

/// BERT's text normalisation, exactly as Hugging Face tokenizers'
/// `BertNormalizer` does it, in its order:
///
/// 1. `cleanText`: drop `\0`, U+FFFD and control characters (Cc, Cf, Co —
///    tab, newline and carriage return count as whitespace instead); turn
///    every whitespace character into a space.
/// 2. `handleChineseCharacters`: put a space on each side of every CJK
///    ideograph, so each becomes a word of its own.
/// 3. `stripAccents`: decompose (NFD) and drop non-spacing marks (Mn), so
///    "Café" becomes "Cafe". `nil` follows `lowercase` (BERT uncased strips).
/// 4. `lowercase`: each character's full lowercase mapping (context-free:
///    "Σ" is "σ" even at the end of a word, as in the reference).
///
/// The character classes are the reference's own, measured from it (see
/// `UnicodeTables`); they differ from current Unicode for characters added
/// in recent versions.
public struct BertNormalizer: Sendable, Equatable {
    /// Remove control characters and map whitespace to spaces.
    public var cleanText: Bool
    /// Surround CJK ideographs with spaces.
    public var handleChineseCharacters: Bool
    /// Strip accents; `nil` means "when lowercasing".
    public var stripAccents: Bool?
    /// Lowercase.
    public var lowercase: Bool

    /// A normaliser; the defaults are BERT uncased's (and all-MiniLM-L6-v2's).
    public init(cleanText: Bool = true, handleChineseCharacters: Bool = true, stripAccents: Bool? = nil, lowercase: Bool = true) {
        self.cleanText = cleanText
        self.handleChineseCharacters = handleChineseCharacters
        self.stripAccents = stripAccents
        self.lowercase = lowercase
    }

    /// The normalised text.
    public func normalize(_ text: String) -> String {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var needsDecomposition = false
        for scalar in text.unicodeScalars {
            if cleanText {
                if UnicodeTables.bertControl.contains(scalar) { continue }
                if UnicodeTables.bertWhitespace.contains(scalar) { scalars.append(" "); continue }
            }
            if handleChineseCharacters && UnicodeTables.bertChinese.contains(scalar) {
                scalars += [" ", scalar, " "]
                continue
            }
            if scalar.value >= 0xC0 { needsDecomposition = true }   // nothing below U+00C0 decomposes
            scalars.append(scalar)
        }
        if stripAccents ?? lowercase {
            if needsDecomposition { scalars = BertNormalizer.canonicalDecomposition(scalars) }
            scalars.removeAll { UnicodeTables.bertNonspacingMark.contains($0) }
        }
        var result = String.UnicodeScalarView()
        if lowercase {
            for scalar in scalars {
                if scalar.isASCII {
                    result.append(scalar.value >= 0x41 && scalar.value <= 0x5A ? Unicode.Scalar(scalar.value + 32)! : scalar)
                } else {
                    result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
                }
            }
        } else {
            result.append(contentsOf: scalars)
        }
        return String(result)
    }

    /// NFD, as the reference's `unicode-normalization` crate computes it:
    /// Foundation's decomposition, except for the one code point the
    /// reference leaves whole (U+11938 DIVES AKURU VOWEL SIGN O, canonical
    /// combining class 0, so splitting around it changes nothing else).
    static func canonicalDecomposition(_ scalars: [Unicode.Scalar]) -> [Unicode.Scalar] {
        let keptWhole: Unicode.Scalar = "\u{11938}"
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(scalars.count + 8)
        for (index, part) in scalars.split(separator: keptWhole, omittingEmptySubsequences: false).enumerated() {
            if index > 0 { result.append(keptWhole) }
            var text = String.UnicodeScalarView()
            text.append(contentsOf: part)
            result += String(text).decomposedStringWithCanonicalMapping.unicodeScalars
        }
        return result
    }
}

/// BERT's pre-tokenisation (Hugging Face `BertPreTokenizer`): split on
/// whitespace, which is dropped, and on punctuation, each character of which
/// becomes a word of its own.
enum BertPreTokenizer {
    /// The words of `text`, as scalar arrays.
    static func words(_ text: String) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars {
            if UnicodeTables.bertWhitespace.contains(scalar) {
                if !current.isEmpty { words.append(current); current = [] }
            } else if UnicodeTables.bertPunctuation.contains(scalar) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
    }
}
