/* fuzz_config.c — libFuzzer target for the configuration parsers, from memory. The first byte
 * picks the file (mod 7): 0 config.json, 1 modules.json, 2 1_Pooling/config.json, 3 a Dense
 * config.json, 4 sentence_bert_config.json, 5 config_sentence_transformers.json, 6 a config.json,
 * a NUL byte, then a .safetensors file checked against it. The rest is the file's bytes. */
#include "model/config.h"
#include "model/safetensors.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int which = data[0] % 7;
    const char *json = (const char *)data + 1;
    size_t len = size - 1;
    sembed__model_config cfg;
    sembed__config_init(&cfg);
    sembed_error err = {0};
    sembed_status s = SEMBED_OK;
    switch (which) {
    case 0: s = sembed__config_parse_hf(&cfg, json, len, "config.json", &err); break;
    case 1: s = sembed__config_parse_modules(&cfg, json, len, "modules.json", &err); break;
    case 2: s = sembed__config_parse_pooling(&cfg, json, len, "config.json", &err); break;
    case 3: s = sembed__config_parse_dense(&cfg.dense[0], json, len, "config.json", &err); break;
    case 4: s = sembed__config_parse_sbert(&cfg, json, len, "sbert.json", &err); break;
    case 5: s = sembed__config_parse_st(&cfg, json, len, "st.json", &err); break;
    case 6: {
        const uint8_t *nul = memchr(json, 0, len);
        if (!nul) break;
        size_t jl = (size_t)(nul - (const uint8_t *)json);
        s = sembed__config_parse_hf(&cfg, json, jl, "config.json", &err);
        if (s != SEMBED_OK) break;
        sembed__st_file *st = NULL;
        if (sembed__st_parse(nul + 1, len - jl - 1, "model.safetensors", &st, &err) == SEMBED_OK) {
            char prefix[64];
            s = sembed__config_check_weights(&cfg, st, prefix, sizeof prefix, &err);
            if (s == SEMBED_OK) SEMBED_ASSERT(strlen(prefix) < sizeof prefix);
            sembed__st_close(st);
        }
        break;
    }
    }
    if (s != SEMBED_OK) {
        SEMBED_ASSERT(err.status == s && err.msg[0] != 0);
    } else if (which != 6) {
        /* the cross-file checks on whatever one file set */
        sembed_status f = sembed__config_finish(&cfg, "fuzz", &err);
        if (f == SEMBED_OK) SEMBED_ASSERT(cfg.output_dim >= 0 && cfg.max_tokens >= 0);
        for (int32_t i = 0; i < cfg.n_pool_modes; i++)
            SEMBED_ASSERT(sembed__pool_mode_name(cfg.pool_modes[i])[0] != 'u');
        for (int32_t i = 0; i < cfg.n_prompts; i++)
            SEMBED_ASSERT(cfg.prompts[i].name && cfg.prompts[i].text);
    }
    if (which == 0 && s == SEMBED_OK) {
        SEMBED_ASSERT(cfg.hidden_size % cfg.num_attention_heads == 0);
        SEMBED_ASSERT(cfg.max_positions >= 1 && cfg.layer_norm_eps > 0);
    }
    sembed__config_free(&cfg);
    return 0;
}
