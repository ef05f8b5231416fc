/* fmtf.h — float32 to JSON text, fast: the CLI's JSON lines and the server's replies. */
#ifndef SEMBED_FMTF_H
#define SEMBED_FMTF_H

/* Writes v into out (at least CLI_FMT_F32_MAX bytes) as a JSON number of 9 significant digits,
 * in printf's %.9g layout (plain for exponents -4..8, else d.ddde±XX), with a NUL; returns its
 * length. strtof of the text gives v back exactly. Zero is "0" ("-0" for negative zero); a
 * non-finite v, which no JSON number can hold, is "null". */
#define CLI_FMT_F32_MAX 24
int cli_fmt_f32(char *out, float v);

#endif
