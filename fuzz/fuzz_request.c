/* fuzz_request.c — libFuzzer target for `sembed serve`'s request-body parsing and validation
 * (tools/sembed/serve_request.c and the fmtf.c it calls, compiled in here). The first byte picks the route (mod 3:
 * /v1/embeddings, /embed, /tokenize); the rest is the body. Checks the parser's promises on
 * success (texts within limits, token ids in range) and that error bodies are valid JSON. */
#include "../tools/sembed/fmtf.c"
#include "../tools/sembed/serve_request.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const srv_route route = (srv_route)(data[0] % 3);
    const srv_limits lim = {.max_inputs = 8, .max_input_bytes = 64, .dim = 384,
                            .vocab_size = 1000, .auto_truncate = true};
    srv_request r;
    srv_error e = {0};
    srv_buf b = {0};
    if (srv_parse_request(route, (const char *)data + 1, size - 1, &lim, &r, &e)) {
        if (r.n < 1 || r.n > lim.max_inputs || (r.dimensions && (r.dimensions < 1 || r.dimensions > lim.dim)))
            abort();
        int32_t n_ids = 0;
        for (int32_t i = 0; i < r.n; i++) {
            if (r.ids && r.ids[i]) { /* token ids: non-empty, each in range, no text */
                if (r.texts[i] || r.n_ids[i] < 1 || route == SRV_TOKENIZE) abort();
                for (int32_t k = 0; k < r.n_ids[i]; k++)
                    if (r.ids[i][k] < 0 || r.ids[i][k] >= lim.vocab_size) abort();
                n_ids++;
                continue;
            }
            if (!r.texts[i] || r.lens[i] == 0 || r.lens[i] > lim.max_input_bytes) abort();
            srv_buf_json_string(&b, r.texts[i], r.lens[i]);
            srv_buf_base64(&b, (const unsigned char *)r.texts[i], r.lens[i]);
        }
        if (n_ids != r.n_id_inputs || (n_ids && r.prompt_name)) abort();
        srv_buf_float(&b, (float)r.n / 3.0f);
    } else {
        if (e.http < 400 || e.http > 599 || !e.type) abort();
        srv_error_body(&b, route, &e);
        json_t *j = json_loadb(b.p, b.n, 0, NULL);
        if (!j) abort(); /* an error body is always JSON */
        json_decref(j);
    }
    srv_free(b.p);
    srv_request_free(&r);
    return 0;
}
