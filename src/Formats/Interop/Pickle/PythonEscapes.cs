using System.Globalization;
using System.Text;

namespace Checkpointing.Formats.Interop.Pickle;

/// <summary>The text escapes of pickle protocol 0 (STRING and UNICODE opcodes).</summary>
internal static class PythonEscapes
{
    /// <summary>STRING: a quoted Python 2 string literal (<c>'...'</c> or <c>"..."</c>) → its bytes.</summary>
    public static byte[] DecodeQuoted(string line)
    {
        if (line.Length < 2 || line[0] != line[^1] || line[0] is not ('\'' or '"'))
            throw new PickleDataException("STRING argument is not a quoted string");
        var body = line.AsSpan(1, line.Length - 2);
        var bytes = new List<byte>(body.Length);
        for (var i = 0; i < body.Length; i++)
        {
            if (body[i] != '\\' || i + 1 == body.Length)
            {
                bytes.Add((byte)body[i]);
                continue;
            }
            var c = body[++i];
            switch (c)
            {
                case 'n': bytes.Add((byte)'\n'); break;
                case 'r': bytes.Add((byte)'\r'); break;
                case 't': bytes.Add((byte)'\t'); break;
                case 'a': bytes.Add(7); break;
                case 'b': bytes.Add(8); break;
                case 'f': bytes.Add(12); break;
                case 'v': bytes.Add(11); break;
                case '\n': break; // line continuation
                case 'x':
                    bytes.Add(ParseHex(body.Slice(i + 1, Math.Min(2, body.Length - i - 1))));
                    i += 2;
                    break;
                case >= '0' and <= '7':
                    var end = i;
                    while (end < body.Length && end < i + 3 && body[end] is >= '0' and <= '7') end++;
                    bytes.Add((byte)Convert.ToInt32(body[i..end].ToString(), 8));
                    i = end - 1;
                    break;
                default: // \\, \', \" and unknown escapes keep the character (unknown ones keep the backslash too)
                    if (c is not ('\\' or '\'' or '"')) bytes.Add((byte)'\\');
                    bytes.Add((byte)c);
                    break;
            }
        }
        return [.. bytes];
    }

    /// <summary>UNICODE: raw-unicode-escape, i.e. latin-1 text where only \uXXXX and \UXXXXXXXX are escapes.</summary>
    public static string DecodeRawUnicode(string line)
    {
        var text = new StringBuilder(line.Length);
        for (var i = 0; i < line.Length; i++)
        {
            var digits = i + 1 < line.Length && line[i] == '\\' ? line[i + 1] switch { 'u' => 4, 'U' => 8, _ => 0 } : 0;
            if (digits == 0 || i + 2 + digits > line.Length)
            {
                text.Append(line[i]);
                continue;
            }
            var code = ParseCodePoint(line.AsSpan(i + 2, digits));
            text.Append(char.ConvertFromUtf32(code));
            i += 1 + digits;
        }
        return text.ToString();
    }

    private static byte ParseHex(ReadOnlySpan<char> hex) =>
        hex.Length == 2 && byte.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b)
            ? b
            : throw new PickleDataException("invalid \\x escape in STRING");

    private static int ParseCodePoint(ReadOnlySpan<char> hex) =>
        int.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var code) && code is >= 0 and <= 0x10FFFF and not (>= 0xD800 and <= 0xDFFF)
            ? code
            : throw new PickleDataException("invalid \\u escape in UNICODE");
}
