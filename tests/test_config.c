/* test_config.c — model folder configuration: good and bad folders written to a temporary
 * folder, each file's parser from memory, the architecture's tensor check against small
 * safetensors files written here, and real cached folders when present. Not the encoder. */
#include "model/config.h"
#include "model/safetensors.h"
#include "testlib.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static bool put(const char *dir, const char *name, const char *text) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    /* make the parent folder of name when it has one */
    char *slash = strrchr(path, '/');
    if (slash && slash > path + strlen(dir)) {
        *slash = 0;
        mkdir(path, 0755);
        *slash = '/';
    }
    return t_write_file(dir, name, text, strlen(text));
}

static bool has(const char *msg, const char *what) {
    return strstr(msg, what) != NULL;
}

typedef sembed_status (*parser)(sembed__model_config *, const char *, size_t, const char *,
                                sembed_error *);

/* Runs one parser on `json` and checks the status and, when `why` is set, the message. */
#define EXPECT_PARSE(fn, json, want, why) expect_parse((fn), (json), (want), (why), __LINE__)
static void expect_parse(parser fn, const char *json, sembed_status want, const char *why,
                         int line) {
    sembed__model_config cfg;
    sembed__config_init(&cfg);
    sembed_error err = {0};
    sembed_status s = fn(&cfg, json, strlen(json), "x/config.json", &err);
    CHECKF(s == want, "line %d: status %d, want %d (%s)", line, s, want, err.msg);
    if (want != SEMBED_OK) {
        CHECKF(strncmp(err.msg, "x/config.json: ", 15) == 0, "line %d: '%s'", line, err.msg);
        if (why) CHECKF(has(err.msg, why), "line %d: '%s' lacks '%s'", line, err.msg, why);
        if (getenv("T_VERBOSE")) printf("line %d: %s\n", line, err.msg);
    }
    sembed__config_free(&cfg);
}

static const char *k_bert_cfg =
    "{\"architectures\":[\"BertModel\"],\"hidden_act\":\"gelu\",\"hidden_size\":384,"
    "\"intermediate_size\":1536,\"layer_norm_eps\":1e-12,\"max_position_embeddings\":512,"
    "\"model_type\":\"bert\",\"num_attention_heads\":12,\"num_hidden_layers\":6,"
    "\"pad_token_id\":0,\"position_embedding_type\":\"absolute\",\"type_vocab_size\":2,"
    "\"vocab_size\":30522,\"torch_dtype\":\"float32\",\"use_cache\":true}";

/* k_bert_cfg with `key` replaced by `value` (raw JSON), or removed when value is NULL. */
static char *bert_with(const char *key, const char *value) {
    static char buf[2048];
    const char *fields[][2] = {
        {"architectures", "[\"BertModel\"]"},
        {"hidden_act", "\"gelu\""},
        {"hidden_size", "384"},
        {"intermediate_size", "1536"},
        {"layer_norm_eps", "1e-12"},
        {"max_position_embeddings", "512"},
        {"model_type", "\"bert\""},
        {"num_attention_heads", "12"},
        {"num_hidden_layers", "6"},
        {"pad_token_id", "0"},
        {"type_vocab_size", "2"},
        {"vocab_size", "30522"},
    };
    size_t n = 0;
    bool seen = false;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "{");
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        const char *v = fields[i][1];
        if (strcmp(fields[i][0], key) == 0) {
            seen = true;
            if (!value) continue;
            v = value;
        }
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"%s\":%s", n > 1 ? "," : "",
                              fields[i][0], v);
    }
    if (!seen && value) n += (size_t)snprintf(buf + n, sizeof buf - n, ",\"%s\":%s", key, value);
    snprintf(buf + n, sizeof buf - n, "}");
    return buf;
}

/* ---- config.json ----------------------------------------------------------------------------- */

static void test_hf(void) {
    sembed__model_config cfg;
    sembed__config_init(&cfg);
    sembed_error err = {0};
    CHECK(sembed__config_parse_hf(&cfg, k_bert_cfg, strlen(k_bert_cfg), "c", &err) == SEMBED_OK);
    CHECK(cfg.arch == SEMBED__ARCH_BERT && cfg.vocab_size == 30522 && cfg.hidden_size == 384 &&
          cfg.num_hidden_layers == 6 && cfg.num_attention_heads == 12 &&
          cfg.intermediate_size == 1536 && cfg.hidden_act == SEMBED__ACT_GELU &&
          cfg.max_position_embeddings == 512 && cfg.type_vocab_size == 2 &&
          cfg.layer_norm_eps == 1e-12 && cfg.pad_token_id == 0 && cfg.position_offset == 0 &&
          cfg.max_positions == 512);
    sembed__config_free(&cfg);

    /* architectures when model_type is absent; defaults for optional fields */
    const char *xlmr = "{\"architectures\":[\"XLMRobertaModel\"],\"hidden_size\":768,"
                       "\"intermediate_size\":3072,\"max_position_embeddings\":514,"
                       "\"num_attention_heads\":12,\"num_hidden_layers\":12,"
                       "\"type_vocab_size\":1,\"vocab_size\":250002,\"hidden_act\":\"gelu_new\","
                       "\"layer_norm_eps\":1e-05}";
    CHECK(sembed__config_parse_hf(&cfg, xlmr, strlen(xlmr), "c", &err) == SEMBED_OK);
    CHECK(cfg.arch == SEMBED__ARCH_XLM_ROBERTA && cfg.type_vocab_size == 1 &&
          cfg.pad_token_id == 1 && cfg.position_offset == 2 && cfg.max_positions == 512 &&
          cfg.hidden_act == SEMBED__ACT_GELU_TANH && cfg.layer_norm_eps == 1e-5);
    sembed__config_free(&cfg);
    const char *mpnet = "{\"architectures\":[\"MPNetForMaskedLM\"],\"model_type\":\"mpnet\","
                        "\"hidden_size\":768,\"intermediate_size\":3072,"
                        "\"max_position_embeddings\":514,\"num_attention_heads\":12,"
                        "\"num_hidden_layers\":12,\"vocab_size\":30527,\"pad_token_id\":1,"
                        "\"relative_attention_num_buckets\":32,\"hidden_act\":\"gelu\"}";
    CHECK(sembed__config_parse_hf(&cfg, mpnet, strlen(mpnet), "c", &err) == SEMBED_OK);
    CHECK(cfg.arch == SEMBED__ARCH_MPNET && cfg.type_vocab_size == 0 &&
          cfg.relative_attention_num_buckets == 32 && cfg.position_offset == 2 &&
          cfg.max_positions == 512);
    sembed__config_free(&cfg);
    const char *roberta = "{\"model_type\":\"roberta\",\"hidden_size\":8,\"intermediate_size\":16,"
                          "\"max_position_embeddings\":20,\"num_attention_heads\":2,"
                          "\"num_hidden_layers\":1,\"vocab_size\":50,\"pad_token_id\":3,"
                          "\"hidden_act\":\"gelu_pytorch_tanh\"}";
    CHECK(sembed__config_parse_hf(&cfg, roberta, strlen(roberta), "c", &err) == SEMBED_OK);
    CHECK(cfg.arch == SEMBED__ARCH_ROBERTA && cfg.position_offset == 4 && cfg.max_positions == 16 &&
          cfg.type_vocab_size == 2);
    sembed__config_free(&cfg);
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("model_type", NULL), SEMBED_OK, NULL);
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("hidden_act", "\"relu\""), SEMBED_OK, NULL);
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("pad_token_id", "null"), SEMBED_OK, NULL);
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("layer_norm_eps", "1"), SEMBED_OK, NULL);
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("extra", "{\"deep\":[1,2,{}]}"), SEMBED_OK,
                 NULL);

    /* not JSON, not an object, too deep */
    EXPECT_PARSE(sembed__config_parse_hf, "", SEMBED_ERR_FORMAT, "not valid JSON");
    EXPECT_PARSE(sembed__config_parse_hf, "{\"hidden_size\":", SEMBED_ERR_FORMAT, "not valid JSON");
    EXPECT_PARSE(sembed__config_parse_hf, "[1]", SEMBED_ERR_FORMAT, "is an array, not an object");
    EXPECT_PARSE(sembed__config_parse_hf, "{\"a\":1,\"a\":2}", SEMBED_ERR_FORMAT, "duplicate");
    char *deep = malloc(20010);
    memset(deep, '[', 10000);
    memset(deep + 10000, ']', 10000);
    deep[20000] = 0;
    EXPECT_PARSE(sembed__config_parse_hf, deep, SEMBED_ERR_FORMAT, "not valid JSON");
    deep[0] = '{';
    memcpy(deep + 1, "\"a\":", 4);
    deep[19999] = '}';
    EXPECT_PARSE(sembed__config_parse_hf, deep, SEMBED_ERR_FORMAT, "not valid JSON");
    free(deep);

    /* the architecture */
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("model_type", "\"distilbert\""),
                 SEMBED_ERR_UNSUPPORTED, "model_type 'distilbert' is not supported");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("model_type", "3"), SEMBED_ERR_FORMAT,
                 "field 'model_type' must be a string, not an integer");
    EXPECT_PARSE(sembed__config_parse_hf,
                 "{\"architectures\":[\"NomicBertModel\"],\"hidden_size\":8}",
                 SEMBED_ERR_UNSUPPORTED, "NomicBertModel");
    EXPECT_PARSE(sembed__config_parse_hf, "{\"architectures\":[\"Bertie\"]}",
                 SEMBED_ERR_UNSUPPORTED, "Bertie");
    EXPECT_PARSE(sembed__config_parse_hf, "{\"architectures\":\"BertModel\"}", SEMBED_ERR_FORMAT,
                 "'architectures' must be an array");
    EXPECT_PARSE(sembed__config_parse_hf, "{\"architectures\":[1]}", SEMBED_ERR_FORMAT,
                 "must hold strings");
    EXPECT_PARSE(sembed__config_parse_hf, "{\"hidden_size\":8}", SEMBED_ERR_FORMAT,
                 "missing required field 'model_type'");

    /* types */
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("hidden_size", "\"384\""), SEMBED_ERR_FORMAT,
                 "field 'hidden_size' must be an integer, not a string");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("hidden_size", "384.0"), SEMBED_ERR_FORMAT,
                 "field 'hidden_size' must be an integer, not a real number");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("vocab_size", "true"), SEMBED_ERR_FORMAT,
                 "field 'vocab_size' must be an integer, not a boolean");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("num_hidden_layers", "[6]"), SEMBED_ERR_FORMAT,
                 "field 'num_hidden_layers' must be an integer, not an array");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("layer_norm_eps", "\"1e-12\""),
                 SEMBED_ERR_FORMAT, "field 'layer_norm_eps' must be a number, not a string");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("hidden_act", "1"), SEMBED_ERR_FORMAT,
                 "field 'hidden_act' must be a string");
    /* missing required fields */
    const char *required[] = {"vocab_size",        "hidden_size",
                              "num_hidden_layers", "num_attention_heads",
                              "intermediate_size", "max_position_embeddings"};
    for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
        char want[100];
        snprintf(want, sizeof want, "missing required field '%s'", required[i]);
        EXPECT_PARSE(sembed__config_parse_hf, bert_with(required[i], NULL), SEMBED_ERR_FORMAT,
                     want);
        EXPECT_PARSE(sembed__config_parse_hf, bert_with(required[i], "null"), SEMBED_ERR_FORMAT,
                     want);
    }
    /* ranges: zero, negative, huge, 2^31, beyond jansson's integers */
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("hidden_size", "0"), SEMBED_ERR_FORMAT,
                 "field 'hidden_size' is 0, outside [1, 65536]");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("hidden_size", "-384"), SEMBED_ERR_FORMAT,
                 "is -384, outside");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("hidden_size", "65537"), SEMBED_ERR_FORMAT,
                 "outside [1, 65536]");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("num_hidden_layers", "1001"), SEMBED_ERR_FORMAT,
                 "outside [1, 1000]");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("vocab_size", "10000001"), SEMBED_ERR_FORMAT,
                 "outside [1, 10000000]");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("max_position_embeddings", "0"),
                 SEMBED_ERR_FORMAT, "field 'max_position_embeddings' is 0");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("max_position_embeddings", "2147483648"),
                 SEMBED_ERR_FORMAT, "is 2147483648, outside");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("intermediate_size", "9223372036854775807"),
                 SEMBED_ERR_FORMAT, "outside");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("intermediate_size", "99999999999999999999"),
                 SEMBED_ERR_FORMAT, "not valid JSON: too big integer");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("num_attention_heads", "0"), SEMBED_ERR_FORMAT,
                 "num_attention_heads' is 0");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("num_attention_heads", "385"),
                 SEMBED_ERR_FORMAT, "outside [1, 384]");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("num_attention_heads", "7"), SEMBED_ERR_FORMAT,
                 "num_attention_heads 7 does not divide hidden_size 384");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("type_vocab_size", "0"), SEMBED_ERR_FORMAT,
                 "type_vocab_size' is 0");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("pad_token_id", "30522"), SEMBED_ERR_FORMAT,
                 "pad_token_id' is 30522, outside [0, 30521]");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("pad_token_id", "-1"), SEMBED_ERR_FORMAT,
                 "pad_token_id' is -1");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("layer_norm_eps", "0"), SEMBED_ERR_FORMAT,
                 "field 'layer_norm_eps' is 0, outside (0, 1]");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("layer_norm_eps", "-1e-12"), SEMBED_ERR_FORMAT,
                 "layer_norm_eps");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("layer_norm_eps", "1e999"), SEMBED_ERR_FORMAT,
                 "not valid JSON"); /* jansson: real number overflow */
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("layer_norm_eps", "2"), SEMBED_ERR_FORMAT,
                 "outside (0, 1]");
    /* things valid but not implemented */
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("hidden_act", "\"silu\""),
                 SEMBED_ERR_UNSUPPORTED, "hidden_act 'silu' is not supported");
    EXPECT_PARSE(sembed__config_parse_hf, bert_with("position_embedding_type", "\"relative_key\""),
                 SEMBED_ERR_UNSUPPORTED, "position_embedding_type 'relative_key'");
    /* positions: roberta's offset must leave room */
    EXPECT_PARSE(sembed__config_parse_hf,
                 "{\"model_type\":\"roberta\",\"hidden_size\":8,\"intermediate_size\":16,"
                 "\"max_position_embeddings\":2,\"num_attention_heads\":2,"
                 "\"num_hidden_layers\":1,\"vocab_size\":50}",
                 SEMBED_ERR_FORMAT, "leaves no position");
    EXPECT_PARSE(sembed__config_parse_hf,
                 "{\"model_type\":\"roberta\",\"hidden_size\":8,\"intermediate_size\":16,"
                 "\"max_position_embeddings\":20,\"num_attention_heads\":2,"
                 "\"num_hidden_layers\":1,\"vocab_size\":1}",
                 SEMBED_ERR_FORMAT, "pad_token_id 1 (the default)");
    EXPECT_PARSE(sembed__config_parse_hf,
                 "{\"model_type\":\"mpnet\",\"hidden_size\":8,\"intermediate_size\":16,"
                 "\"max_position_embeddings\":20,\"num_attention_heads\":2,"
                 "\"num_hidden_layers\":1,\"vocab_size\":50,"
                 "\"relative_attention_num_buckets\":16}",
                 SEMBED_ERR_FORMAT, "relative_attention_num_buckets' is 16, outside [32, 1024]");
}

/* ---- the sentence-transformers files, from memory ----------------------------------------------
 */

static void test_st_files(void) {
    sembed__model_config cfg;
    sembed_error err = {0};
#define PARSE(fn, json) fn(&cfg, (json), strlen(json), "f", &err)

    /* modules.json */
    sembed__config_init(&cfg);
    const char *mods = "[{\"idx\":0,\"name\":\"0\",\"path\":\"\","
                       "\"type\":\"sentence_transformers.models.Transformer\"},"
                       "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\","
                       "\"type\":\"sentence_transformers.models.Pooling\"},"
                       "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Dense\","
                       "\"type\":\"sentence_transformers.models.Dense\"},"
                       "{\"idx\":3,\"name\":\"3\",\"path\":\"3_Dense\","
                       "\"type\":\"sentence_transformers.base.modules.dense.Dense\"},"
                       "{\"idx\":4,\"name\":\"4\",\"path\":\"4_Normalize\","
                       "\"type\":\"sentence_transformers.models.Normalize\"}]";
    CHECK(PARSE(sembed__config_parse_modules, mods) == SEMBED_OK);
    CHECK(cfg.has_modules && cfg.transformer_dir && !strcmp(cfg.transformer_dir, "") &&
          cfg.pooling_dir && !strcmp(cfg.pooling_dir, "1_Pooling") && cfg.n_dense == 2 &&
          !strcmp(cfg.dense[1].dir, "3_Dense") && cfg.normalize);
    sembed__config_free(&cfg);
    const char *v6 = "[{\"idx\":0,\"name\":\"0\",\"path\":\"0_Transformer\","
                     "\"type\":\"sentence_transformers.base.modules.transformer.Transformer\"},"
                     "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":"
                     "\"sentence_transformers.sentence_transformer.modules.pooling.Pooling\"}]";
    CHECK(PARSE(sembed__config_parse_modules, v6) == SEMBED_OK);
    CHECK(!strcmp(cfg.transformer_dir, "0_Transformer") && !cfg.normalize && cfg.n_dense == 0);
    sembed__config_free(&cfg);
    /* only a Transformer: pooling stays unset */
    EXPECT_PARSE(sembed__config_parse_modules,
                 "[{\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"}]",
                 SEMBED_OK, NULL);
#define T_TR "{\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"}"
#define T_PO "{\"path\":\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"}"
#define T_DE "{\"path\":\"2_Dense\",\"type\":\"sentence_transformers.models.Dense\"}"
#define T_NO "{\"path\":\"2_Normalize\",\"type\":\"sentence_transformers.models.Normalize\"}"
    EXPECT_PARSE(sembed__config_parse_modules,
                 "[" T_TR ",{\"path\":\"1\",\"type\":\"sentence_transformers.models.LSTM\"}]",
                 SEMBED_ERR_UNSUPPORTED,
                 "module 1 has type 'sentence_transformers.models.LSTM', which sembed does not "
                 "support");
    EXPECT_PARSE(sembed__config_parse_modules,
                 "[{\"path\":\"\",\"type\":\"custom_st.Transformer\"}]", SEMBED_ERR_UNSUPPORTED,
                 "custom_st.Transformer");
    EXPECT_PARSE(sembed__config_parse_modules, "[" T_TR "," T_DE "," T_PO "]",
                 SEMBED_ERR_UNSUPPORTED, "out of the supported order");
    EXPECT_PARSE(sembed__config_parse_modules, "[" T_PO "," T_TR "]", SEMBED_ERR_UNSUPPORTED,
                 "module 0");
    EXPECT_PARSE(sembed__config_parse_modules, "[" T_TR "," T_TR "]", SEMBED_ERR_UNSUPPORTED,
                 "order");
    EXPECT_PARSE(sembed__config_parse_modules, "[" T_TR "," T_PO "," T_NO "," T_DE "]",
                 SEMBED_ERR_UNSUPPORTED, "order");
    EXPECT_PARSE(sembed__config_parse_modules, "[" T_TR "," T_NO "]", SEMBED_ERR_UNSUPPORTED,
                 "order");
    EXPECT_PARSE(sembed__config_parse_modules,
                 "[" T_TR "," T_PO "," T_DE "," T_DE "," T_DE "," T_DE "," T_DE "]",
                 SEMBED_ERR_UNSUPPORTED, "more than 4 Dense modules");
    EXPECT_PARSE(sembed__config_parse_modules, "[" T_TR "," T_PO "," T_DE "," T_NO "]", SEMBED_OK,
                 NULL);
    EXPECT_PARSE(sembed__config_parse_modules,
                 "[{\"path\":\"../x\",\"type\":\"sentence_transformers.models.Transformer\"}]",
                 SEMBED_ERR_FORMAT, "path '../x', not a relative path");
    const char *bad_paths[] = {"/etc", "a/../../b", "..", "C:x", "a\\\\..\\\\b"};
    for (size_t i = 0; i < sizeof bad_paths / sizeof *bad_paths; i++) {
        char j[300];
        snprintf(j, sizeof j,
                 "[{\"path\":\"%s\",\"type\":\"sentence_transformers.models.Transformer\"}]",
                 bad_paths[i]);
        EXPECT_PARSE(sembed__config_parse_modules, j, SEMBED_ERR_FORMAT, "not a relative path");
    }
    EXPECT_PARSE(sembed__config_parse_modules, "[]", SEMBED_ERR_FORMAT, "lists no modules");
    EXPECT_PARSE(sembed__config_parse_modules, "{}", SEMBED_ERR_FORMAT, "not an array");
    EXPECT_PARSE(sembed__config_parse_modules, "[1]", SEMBED_ERR_FORMAT,
                 "module 0 is an integer, not an object");
    EXPECT_PARSE(sembed__config_parse_modules, "[{\"path\":\"\"}]", SEMBED_ERR_FORMAT,
                 "missing required field 'type'");
    EXPECT_PARSE(sembed__config_parse_modules,
                 "[{\"type\":\"sentence_transformers.models.Transformer\"}]", SEMBED_ERR_FORMAT,
                 "missing required field 'path'");
    EXPECT_PARSE(sembed__config_parse_modules,
                 "[{\"path\":0,\"type\":\"sentence_transformers.models.Transformer\"}]",
                 SEMBED_ERR_FORMAT, "field 'path' must be a string, not an integer");

    /* pooling: legacy booleans (concatenated in sentence-transformers' order), none = mean */
    sembed__config_init(&cfg);
    CHECK(PARSE(sembed__config_parse_pooling,
                "{\"word_embedding_dimension\":384,\"pooling_mode_cls_token\":false,"
                "\"pooling_mode_mean_tokens\":true,\"pooling_mode_max_tokens\":false,"
                "\"pooling_mode_mean_sqrt_len_tokens\":false}") == SEMBED_OK);
    CHECK(cfg.n_pool_modes == 1 && cfg.pool_modes[0] == SEMBED__POOL_MEAN && cfg.pool_dim == 384 &&
          cfg.include_prompt);
    CHECK(PARSE(sembed__config_parse_pooling,
                "{\"word_embedding_dimension\":8,\"pooling_mode_mean_tokens\":true,"
                "\"pooling_mode_cls_token\":true,\"pooling_mode_lasttoken\":true,"
                "\"pooling_mode_max_tokens\":true,\"include_prompt\":false}") == SEMBED_OK);
    CHECK(cfg.n_pool_modes == 4 && cfg.pool_modes[0] == SEMBED__POOL_CLS &&
          cfg.pool_modes[1] == SEMBED__POOL_MAX && cfg.pool_modes[2] == SEMBED__POOL_MEAN &&
          cfg.pool_modes[3] == SEMBED__POOL_LAST_TOKEN && !cfg.include_prompt);
    CHECK(PARSE(sembed__config_parse_pooling,
                "{\"word_embedding_dimension\":8,\"pooling_mode_mean_tokens\":false}") ==
          SEMBED_OK);
    CHECK(cfg.n_pool_modes == 1 && cfg.pool_modes[0] == SEMBED__POOL_MEAN);
    /* sentence-transformers >= 6: pooling_mode, a name or a list, in the order given */
    CHECK(PARSE(sembed__config_parse_pooling,
                "{\"embedding_dimension\":16,\"pooling_mode\":\"cls\","
                "\"pooling_mode_mean_tokens\":true}") == SEMBED_OK);
    CHECK(cfg.n_pool_modes == 1 && cfg.pool_modes[0] == SEMBED__POOL_CLS && cfg.pool_dim == 16);
    CHECK(PARSE(sembed__config_parse_pooling,
                "{\"embedding_dimension\":16,\"pooling_mode\":[\"weightedmean\","
                "\"mean_sqrt_len_tokens\"]}") == SEMBED_OK);
    CHECK(cfg.n_pool_modes == 2 && cfg.pool_modes[0] == SEMBED__POOL_WEIGHTED_MEAN &&
          cfg.pool_modes[1] == SEMBED__POOL_MEAN_SQRT_LEN);
    CHECK(!strcmp(sembed__pool_mode_name(cfg.pool_modes[0]), "weightedmean"));
    sembed__config_free(&cfg);
    EXPECT_PARSE(sembed__config_parse_pooling, "{\"embedding_dimension\":16,\"pooling_mode\":[]}",
                 SEMBED_ERR_FORMAT, "lists 0 modes");
    EXPECT_PARSE(sembed__config_parse_pooling,
                 "{\"embedding_dimension\":16,\"pooling_mode\":\"median\"}", SEMBED_ERR_UNSUPPORTED,
                 "pooling mode 'median' is not supported");
    EXPECT_PARSE(sembed__config_parse_pooling, "{\"embedding_dimension\":16,\"pooling_mode\":[1]}",
                 SEMBED_ERR_FORMAT, "must hold strings");
    EXPECT_PARSE(sembed__config_parse_pooling,
                 "{\"word_embedding_dimension\":8,\"pooling_mode_mean_tokens\":1}",
                 SEMBED_ERR_FORMAT, "field 'pooling_mode_mean_tokens' must be true or false");
    EXPECT_PARSE(sembed__config_parse_pooling, "{\"pooling_mode_mean_tokens\":true}",
                 SEMBED_ERR_FORMAT, "missing required field 'word_embedding_dimension'");
    EXPECT_PARSE(sembed__config_parse_pooling, "{\"word_embedding_dimension\":\"8\"}",
                 SEMBED_ERR_FORMAT, "must be an integer, not a string");
    EXPECT_PARSE(sembed__config_parse_pooling, "{\"word_embedding_dimension\":-8}",
                 SEMBED_ERR_FORMAT, "is -8");
    EXPECT_PARSE(sembed__config_parse_pooling,
                 "{\"word_embedding_dimension\":8,\"include_prompt\":\"no\"}", SEMBED_ERR_FORMAT,
                 "include_prompt");

    /* sentence_bert_config.json */
    sembed__config_init(&cfg);
    CHECK(PARSE(sembed__config_parse_sbert, "{\"max_seq_length\":256,\"do_lower_case\":true}") ==
          SEMBED_OK);
    CHECK(cfg.max_seq_length == 256 && cfg.do_lower_case);
    sembed__config_free(&cfg);
    EXPECT_PARSE(sembed__config_parse_sbert, "{\"max_seq_length\":null}", SEMBED_OK, NULL);
    EXPECT_PARSE(sembed__config_parse_sbert, "{\"max_seq_length\":\"256\"}", SEMBED_ERR_FORMAT,
                 "field 'max_seq_length' must be an integer, not a string");
    EXPECT_PARSE(sembed__config_parse_sbert, "{\"max_seq_length\":0}", SEMBED_ERR_FORMAT,
                 "max_seq_length' is 0");
    EXPECT_PARSE(sembed__config_parse_sbert, "{\"do_lower_case\":0}", SEMBED_ERR_FORMAT,
                 "do_lower_case");

    /* config_sentence_transformers.json */
    sembed__config_init(&cfg);
    CHECK(PARSE(sembed__config_parse_st,
                "{\"__version__\":{\"sentence_transformers\":\"3.0.1\"},\"prompts\":{\"query\":"
                "\"query: \",\"passage\":\"passage: \",\"none\":null},\"default_prompt_name\":"
                "\"query\",\"similarity_fn_name\":\"cosine\"}") == SEMBED_OK);
    CHECK(cfg.n_prompts == 3 && !strcmp(cfg.prompts[0].name, "query") &&
          !strcmp(cfg.prompts[0].text, "query: ") && !strcmp(cfg.prompts[1].name, "passage") &&
          !strcmp(cfg.prompts[2].text, "") && cfg.default_prompt == 0 &&
          cfg.similarity == SEMBED__SIM_COSINE);
    /* parsing again replaces the prompts */
    CHECK(PARSE(sembed__config_parse_st, "{\"prompts\":{},\"default_prompt_name\":null,"
                                         "\"similarity_fn_name\":\"dot_product\"}") == SEMBED_OK);
    CHECK(cfg.n_prompts == 0 && cfg.default_prompt == -1 && cfg.similarity == SEMBED__SIM_DOT);
    sembed__config_free(&cfg);
    EXPECT_PARSE(sembed__config_parse_st,
                 "{\"prompts\":{\"q\":\"x\"},\"default_prompt_name\":\"p\"}", SEMBED_ERR_FORMAT,
                 "default_prompt_name 'p' is not one of the prompts");
    EXPECT_PARSE(sembed__config_parse_st, "{\"prompts\":{\"q\":1}}", SEMBED_ERR_FORMAT,
                 "prompt 'q' must be a string, not an integer");
    EXPECT_PARSE(sembed__config_parse_st, "{\"prompts\":[\"q\"]}", SEMBED_ERR_FORMAT,
                 "field 'prompts' must be an object");
    sembed__config_init(&cfg);
    CHECK(PARSE(sembed__config_parse_st, "{\"similarity_fn_name\":\"euclidean\"}") == SEMBED_OK &&
          cfg.similarity == SEMBED__SIM_EUCLIDEAN);
    CHECK(PARSE(sembed__config_parse_st, "{\"similarity_fn_name\":\"manhattan\"}") == SEMBED_OK &&
          cfg.similarity == SEMBED__SIM_MANHATTAN);
    sembed__config_free(&cfg);
    {
        char many[8000];
        size_t k = (size_t)snprintf(many, sizeof many, "{\"prompts\":{");
        for (int i = 0; i < 257; i++)
            k += (size_t)snprintf(many + k, sizeof many - k, "%s\"p%d\":\"\"", i ? "," : "", i);
        snprintf(many + k, sizeof many - k, "}}");
        EXPECT_PARSE(sembed__config_parse_st, many, SEMBED_ERR_FORMAT,
                     "257 prompts, more than the limit of 256");
    }
    EXPECT_PARSE(sembed__config_parse_st, "{\"similarity_fn_name\":\"maxsim\"}",
                 SEMBED_ERR_UNSUPPORTED, "similarity_fn_name 'maxsim'");
    EXPECT_PARSE(sembed__config_parse_st, "{\"similarity_fn_name\":7}", SEMBED_ERR_FORMAT,
                 "similarity_fn_name' must be a string");

    /* Dense */
    sembed__dense_config d;
    memset(&d, 0, sizeof d);
    const char *dj = "{\"in_features\":768,\"out_features\":512,\"bias\":false,"
                     "\"activation_function\":\"torch.nn.modules.linear.Identity\"}";
    CHECK(sembed__config_parse_dense(&d, dj, strlen(dj), "f", &err) == SEMBED_OK);
    CHECK(d.in_features == 768 && d.out_features == 512 && !d.bias &&
          d.act == SEMBED__DENSE_IDENTITY);
    dj = "{\"in_features\":768,\"out_features\":512}";
    CHECK(sembed__config_parse_dense(&d, dj, strlen(dj), "f", &err) == SEMBED_OK);
    CHECK(d.bias && d.act == SEMBED__DENSE_TANH);
    const char *acts[][2] = {
        {"torch.nn.modules.activation.Tanh", "1"}, {"torch.nn.Tanh", "1"},
        {"torch.nn.modules.activation.ReLU", "2"}, {"torch.nn.modules.activation.Sigmoid", "3"},
        {"torch.nn.modules.activation.GELU", "4"}, {"torch.nn.Identity", "0"}};
    for (size_t i = 0; i < sizeof acts / sizeof *acts; i++) {
        char j[200];
        snprintf(j, sizeof j,
                 "{\"in_features\":4,\"out_features\":2,\"activation_function\":\"%s\"}",
                 acts[i][0]);
        CHECK(sembed__config_parse_dense(&d, j, strlen(j), "f", &err) == SEMBED_OK &&
              (int)d.act == atoi(acts[i][1]));
    }
    const char *bad_dense[][3] = {
        {"{\"in_features\":4,\"out_features\":2,\"activation_function\":\"mymod.Swish\"}", "4",
         "activation_function 'mymod.Swish' is not supported"},
        {"{\"in_features\":4,\"out_features\":2,\"activation_function\":\"torch.nn.Softmax\"}", "4",
         "torch.nn.Softmax"},
        {"{\"in_features\":4,\"out_features\":2,\"use_residual\":true}", "4", "use_residual"},
        {"{\"in_features\":4}", "3", "missing required field 'out_features'"},
        {"{\"in_features\":0,\"out_features\":2}", "3", "in_features' is 0"},
        {"{\"in_features\":4,\"out_features\":2,\"bias\":\"yes\"}", "3", "'bias' must be true"},
        {"[]", "3", "not an object"},
    };
    for (size_t i = 0; i < sizeof bad_dense / sizeof *bad_dense; i++) {
        sembed_status want = bad_dense[i][1][0] == '4' ? SEMBED_ERR_UNSUPPORTED : SEMBED_ERR_FORMAT;
        memset(&err, 0, sizeof err);
        sembed_status s =
            sembed__config_parse_dense(&d, bad_dense[i][0], strlen(bad_dense[i][0]), "f", &err);
        CHECKF(s == want && has(err.msg, bad_dense[i][2]), "dense %zu: %d %s", i, s, err.msg);
    }
#undef PARSE
}

/* ---- folders ------------------------------------------------------------------------------------
 */

static const char *k_mods_norm = "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_"
                                 "transformers.models.Transformer\"},"
                                 "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\","
                                 "\"type\":\"sentence_transformers.models.Pooling\"},"
                                 "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Normalize\","
                                 "\"type\":\"sentence_transformers.models.Normalize\"}]";
static const char *k_pool_384 =
    "{\"word_embedding_dimension\":384,\"pooling_mode_mean_tokens\":true}";

static sembed_status load_dir(const char *dir, sembed__model_config *cfg, sembed_error *err) {
    memset(err, 0, sizeof *err);
    sembed_status s = sembed__config_load(dir, cfg, err);
    if (getenv("T_VERBOSE") && s != SEMBED_OK) printf("load: %s\n", err->msg);
    return s;
}

static void test_folders(void) {
    char *dir = t_tmpdir();
    CHECK(dir != NULL);
    if (!dir) return;
    sembed__model_config cfg;
    sembed_error err;

    /* a plain Hugging Face folder: pooling unset */
    CHECK(put(dir, "config.json", k_bert_cfg));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_OK);
    CHECK(!cfg.has_modules && cfg.n_pool_modes == 0 && cfg.output_dim == 384 &&
          cfg.max_tokens == 512 && !cfg.normalize && cfg.similarity == SEMBED__SIM_UNSET);
    CHECK(cfg.transformer_dir && has(cfg.transformer_dir, dir));
    sembed__config_free(&cfg);
    sembed__config_free(&cfg); /* twice is fine: free re-initializes */

    /* a sentence-transformers folder like all-MiniLM-L6-v2 */
    CHECK(put(dir, "modules.json", k_mods_norm));
    CHECK(put(dir, "1_Pooling/config.json", k_pool_384));
    CHECK(
        put(dir, "sentence_bert_config.json", "{\"max_seq_length\":256,\"do_lower_case\":false}"));
    CHECK(put(dir, "config_sentence_transformers.json",
              "{\"prompts\":{\"query\":\"q: \"},\"default_prompt_name\":null}"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_OK);
    CHECK(cfg.has_modules && cfg.n_pool_modes == 1 && cfg.pool_modes[0] == SEMBED__POOL_MEAN &&
          cfg.normalize && cfg.output_dim == 384 && cfg.max_seq_length == 256 &&
          cfg.max_tokens == 256 && cfg.n_prompts == 1 && cfg.default_prompt == -1);
    sembed__config_free(&cfg);

    /* max_seq_length beyond the position table: max_tokens is the table's size */
    CHECK(put(dir, "sentence_bert_config.json", "{\"max_seq_length\":8192}"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_OK && cfg.max_tokens == 512);
    sembed__config_free(&cfg);

    /* bad files in the folder name the file */
    CHECK(put(dir, "sentence_bert_config.json", "{\"max_seq_length\":\"x\"}"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "sentence_bert_config.json: field 'max_seq_length'"));
    CHECK(cfg.transformer_dir == NULL); /* freed on failure */
    CHECK(put(dir, "sentence_bert_config.json", "{}"));

    CHECK(put(dir, "1_Pooling/config.json", "{\"word_embedding_dimension\":768}"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg,
              "1_Pooling/config.json: embedding_dimension 768 differs from hidden_size 384"));
    CHECK(put(dir, "1_Pooling/config.json", "not json"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "1_Pooling/config.json: not valid JSON"));
    char path[4200];
    snprintf(path, sizeof path, "%s/1_Pooling/config.json", dir);
    remove(path);
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_IO);
    CHECK(has(err.msg, "1_Pooling/config.json"));
    CHECK(put(dir, "1_Pooling/config.json", k_pool_384));

    CHECK(put(dir, "config.json", bert_with("num_attention_heads", "5")));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "config.json: num_attention_heads 5 does not divide hidden_size 384"));
    CHECK(put(dir, "config.json", k_bert_cfg));

    CHECK(put(dir, "config_sentence_transformers.json", "{\"prompts\":5}"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "config_sentence_transformers.json: field 'prompts'"));
    CHECK(put(dir, "config_sentence_transformers.json", "{}"));

    CHECK(put(dir, "modules.json",
              "[{\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"
              "{\"path\":\"1\",\"type\":\"sentence_transformers.models.WordWeights\"}]"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_UNSUPPORTED);
    CHECK(has(err.msg, "modules.json: module 1 has type"));
    CHECK(put(dir, "modules.json", "[{]"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_FORMAT && has(err.msg, "modules.json"));

    /* the Transformer in a subfolder; Dense modules with weights */
    CHECK(put(dir, "modules.json",
              "[{\"path\":\"0_Transformer\",\"type\":\"sentence_transformers.models.Transformer\"},"
              "{\"path\":\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"},"
              "{\"path\":\"2_Dense\",\"type\":\"sentence_transformers.models.Dense\"},"
              "{\"path\":\"3_Dense\",\"type\":\"sentence_transformers.models.Dense\"}]"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_IO);
    CHECK(has(err.msg, "0_Transformer/config.json"));
    CHECK(put(dir, "0_Transformer/config.json", k_bert_cfg));
    CHECK(put(dir, "2_Dense/config.json",
              "{\"in_features\":384,\"out_features\":768,\"bias\":true,"
              "\"activation_function\":\"torch.nn.modules.activation.Tanh\"}"));
    CHECK(put(dir, "3_Dense/config.json",
              "{\"in_features\":768,\"out_features\":256,\"bias\":false,"
              "\"activation_function\":\"torch.nn.modules.linear.Identity\"}"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_IO);
    CHECK(has(err.msg, "2_Dense: the Dense module has neither model.safetensors nor "
                       "pytorch_model.bin"));
    CHECK(put(dir, "2_Dense/model.safetensors", "x"));
    CHECK(put(dir, "3_Dense/pytorch_model.bin", "x"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_OK);
    CHECK(cfg.n_dense == 2 && cfg.output_dim == 256 && !cfg.normalize);
    CHECK(cfg.dense[0].weights_safetensors &&
          has(cfg.dense[0].weights_path, "2_Dense/model.safetensors"));
    CHECK(!cfg.dense[1].weights_safetensors &&
          has(cfg.dense[1].weights_path, "3_Dense/pytorch_model.bin"));
    CHECK(has(cfg.transformer_dir, "0_Transformer"));
    sembed__config_free(&cfg);
    CHECK(put(dir, "3_Dense/config.json", "{\"in_features\":700,\"out_features\":256}"));
    CHECK(load_dir(dir, &cfg, &err) == SEMBED_ERR_FORMAT);
    CHECK(
        has(err.msg, "3_Dense/config.json: in_features 700, but the module before it outputs 768"));

    /* no config.json at all */
    char *empty = t_tmpdir();
    CHECK(load_dir(empty, &cfg, &err) == SEMBED_ERR_IO && has(err.msg, "config.json"));
    t_rmdir(empty);
    CHECK(sembed__config_load(NULL, &cfg, &err) == SEMBED_ERR_INVALID_ARG);

    /* allocation failures while loading a whole folder: clean errors, nothing leaked */
    CHECK(put(dir, "3_Dense/config.json", "{\"in_features\":768,\"out_features\":256}"));
    CHECK(put(dir, "config_sentence_transformers.json",
              "{\"prompts\":{\"a\":\"x\",\"b\":\"y\"},\"default_prompt_name\":\"b\"}"));
    bool done = false;
    for (int64_t n = 1; n < 200 && !done; n++) {
        sembed__alloc_fail_at(n, false);
        sembed_status s = sembed__config_load(dir, &cfg, &err);
        sembed__alloc_fail_at(0, false);
        CHECKF(s == SEMBED_OK || s == SEMBED_ERR_NOMEM, "n=%lld: %s", (long long)n, err.msg);
        if (s == SEMBED_OK) {
            done = true;
            CHECK(cfg.n_prompts == 2 && cfg.default_prompt == 1);
        }
        sembed__config_free(&cfg);
    }
    CHECK(done);
    t_rmdir(dir);
}

/* ---- weights against the architecture
 * ------------------------------------------------------------ */

/* A small safetensors writer: F32 tensors of zeros. */
typedef struct stw {
    char hdr[1 << 16];
    size_t hl;
    uint64_t off;
} stw;

static void stw_add(stw *w, const char *name, const char *dtype, int n, const int64_t *shape) {
    int64_t elems = 1;
    int bytes = !strcmp(dtype, "F32") ? 4 : !strcmp(dtype, "I64") ? 8 : 2;
    w->hl += (size_t)snprintf(w->hdr + w->hl, sizeof w->hdr - w->hl,
                              "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", w->hl > 1 ? "," : "", name,
                              dtype);
    for (int i = 0; i < n; i++) {
        w->hl += (size_t)snprintf(w->hdr + w->hl, sizeof w->hdr - w->hl, "%s%lld", i ? "," : "",
                                  (long long)shape[i]);
        elems *= shape[i];
    }
    uint64_t end = w->off + (uint64_t)(elems * bytes);
    w->hl +=
        (size_t)snprintf(w->hdr + w->hl, sizeof w->hdr - w->hl, "],\"data_offsets\":[%llu,%llu]}",
                         (unsigned long long)w->off, (unsigned long long)end);
    w->off = end;
}

static sembed__st_file *stw_finish(stw *w, uint8_t **buf) {
    w->hl += (size_t)snprintf(w->hdr + w->hl, sizeof w->hdr - w->hl, "}");
    size_t size = 8 + w->hl + w->off;
    *buf = calloc(1, size);
    for (int i = 0; i < 8; i++) (*buf)[i] = (uint8_t)((uint64_t)w->hl >> (8 * i));
    memcpy(*buf + 8, w->hdr, w->hl);
    sembed__st_file *st = NULL;
    sembed_error err = {0};
    sembed_status s = sembed__st_parse(*buf, size, "model.safetensors", &st, &err);
    CHECKF(s == SEMBED_OK, "writer: %s", err.msg);
    return st;
}

/* Options for a synthetic encoder file. */
typedef struct variant {
    const char *prefix; /* "bert." */
    const char *skip;   /* a tensor name (without prefix) left out */
    const char *bad;    /* a tensor name whose last dimension is one short */
    const char *i64;    /* a tensor name written as I64 */
    bool legacy_ln;     /* LayerNorm.gamma / .beta */
    bool extra_layer;   /* one more layer than the config */
    bool pooler;
} variant;

static void add(stw *w, const variant *v, const char *name, int n, int64_t d0, int64_t d1) {
    if (v->skip && !strcmp(name, v->skip)) return;
    char full[300];
    snprintf(full, sizeof full, "%s%s", v->prefix ? v->prefix : "", name);
    if (v->legacy_ln) {
        char *p = strstr(full, "LayerNorm.weight");
        if (p) strcpy(p, "LayerNorm.gamma");
        p = strstr(full, "LayerNorm.bias");
        if (p) strcpy(p, "LayerNorm.beta");
    }
    int64_t shape[2] = {d0, d1};
    if (v->bad && !strcmp(name, v->bad)) shape[n - 1]--;
    stw_add(w, full, v->i64 && !strcmp(name, v->i64) ? "I64" : "F32", n, shape);
}

/* BERT-family names as in transformers' modeling_bert.py (and the real all-MiniLM-L6-v2 file);
 * MPNet as modeling_mpnet.py. */
static sembed__st_file *write_model(const sembed__model_config *c, const variant *v,
                                    uint8_t **buf) {
    static stw w;
    memset(&w, 0, sizeof w);
    w.hl = (size_t)snprintf(w.hdr, sizeof w.hdr, "{");
    int64_t V = c->vocab_size, H = c->hidden_size, P = c->max_position_embeddings,
            T = c->type_vocab_size, I = c->intermediate_size;
    bool mpnet = c->arch == SEMBED__ARCH_MPNET;
    stw_add(&w, "embeddings.position_ids", "I64", 2, (int64_t[]){1, P});
    add(&w, v, "embeddings.word_embeddings.weight", 2, V, H);
    add(&w, v, "embeddings.position_embeddings.weight", 2, P, H);
    if (!mpnet) add(&w, v, "embeddings.token_type_embeddings.weight", 2, T, H);
    add(&w, v, "embeddings.LayerNorm.weight", 1, H, 0);
    add(&w, v, "embeddings.LayerNorm.bias", 1, H, 0);
    if (mpnet)
        add(&w, v, "encoder.relative_attention_bias.weight", 2, c->relative_attention_num_buckets,
            c->num_attention_heads);
    int layers = c->num_hidden_layers + (v->extra_layer ? 1 : 0);
    for (int l = 0; l < layers; l++) {
        char n[200];
        const char *attn[] = {"self.query", "self.key", "self.value", "output.dense"};
        const char *mp[] = {"attn.q", "attn.k", "attn.v", "attn.o"};
        for (int k = 0; k < 4; k++) {
            snprintf(n, sizeof n, "encoder.layer.%d.attention.%s.weight", l,
                     mpnet ? mp[k] : attn[k]);
            add(&w, v, n, 2, H, H);
            snprintf(n, sizeof n, "encoder.layer.%d.attention.%s.bias", l, mpnet ? mp[k] : attn[k]);
            add(&w, v, n, 1, H, 0);
        }
        const char *ln = mpnet ? "attention.LayerNorm" : "attention.output.LayerNorm";
        snprintf(n, sizeof n, "encoder.layer.%d.%s.weight", l, ln);
        add(&w, v, n, 1, H, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.%s.bias", l, ln);
        add(&w, v, n, 1, H, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.intermediate.dense.weight", l);
        add(&w, v, n, 2, I, H);
        snprintf(n, sizeof n, "encoder.layer.%d.intermediate.dense.bias", l);
        add(&w, v, n, 1, I, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.output.dense.weight", l);
        add(&w, v, n, 2, H, I);
        snprintf(n, sizeof n, "encoder.layer.%d.output.dense.bias", l);
        add(&w, v, n, 1, H, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.output.LayerNorm.weight", l);
        add(&w, v, n, 1, H, 0);
        snprintf(n, sizeof n, "encoder.layer.%d.output.LayerNorm.bias", l);
        add(&w, v, n, 1, H, 0);
    }
    if (v->pooler) {
        add(&w, v, "pooler.dense.weight", 2, H, H);
        add(&w, v, "pooler.dense.bias", 1, H, 0);
    }
    return stw_finish(&w, buf);
}

/* Writes the model per `v`, checks it, and expects `want` with `why` in the message. */
#define EXPECT_WEIGHTS(c, v, want, why, pfx)                                                       \
    expect_weights((c), (v), (want), (why), (pfx), __LINE__)
static void expect_weights(const sembed__model_config *c, const variant *v, sembed_status want,
                           const char *why, const char *want_prefix, int line) {
    uint8_t *buf = NULL;
    sembed__st_file *st = write_model(c, v, &buf);
    if (st) {
        char prefix[64] = "junk";
        sembed_error err = {0};
        sembed_status s = sembed__config_check_weights(c, st, prefix, sizeof prefix, &err);
        CHECKF(s == want, "line %d: status %d (%s)", line, s, err.msg);
        if (want != SEMBED_OK && why)
            CHECKF(has(err.msg, why), "line %d: '%s' lacks '%s'", line, err.msg, why);
        if (want == SEMBED_OK && want_prefix)
            CHECKF(!strcmp(prefix, want_prefix), "line %d: prefix '%s'", line, prefix);
        if (getenv("T_VERBOSE") && s != SEMBED_OK) printf("line %d: %s\n", line, err.msg);
        sembed__st_close(st);
    }
    free(buf);
}

static void test_weights(void) {
    sembed__model_config c;
    sembed__config_init(&c);
    sembed_error err = {0};
    const char *tiny = "{\"model_type\":\"bert\",\"vocab_size\":11,\"hidden_size\":6,"
                       "\"num_hidden_layers\":2,\"num_attention_heads\":2,"
                       "\"intermediate_size\":10,\"max_position_embeddings\":9,"
                       "\"type_vocab_size\":2}";
    CHECK(sembed__config_parse_hf(&c, tiny, strlen(tiny), "config.json", &err) == SEMBED_OK);

    variant v = {0};
    EXPECT_WEIGHTS(&c, &v, SEMBED_OK, NULL, "");
    v.pooler = true;
    EXPECT_WEIGHTS(&c, &v, SEMBED_OK, NULL, "");
    v = (variant){.prefix = "bert.", .legacy_ln = true};
    EXPECT_WEIGHTS(&c, &v, SEMBED_OK, NULL, "bert.");
    v = (variant){.prefix = "model."};
    EXPECT_WEIGHTS(&c, &v, SEMBED_OK, NULL, "model.");
    v = (variant){.skip = "encoder.layer.1.output.dense.weight"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT, NULL, NULL);
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT,
                   "model.safetensors: missing tensor 'encoder.layer.1.output.dense.weight'", NULL);
    v = (variant){.prefix = "roberta.", .skip = "embeddings.LayerNorm.bias"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT, "missing tensor 'roberta.embeddings.LayerNorm.bias'",
                   NULL);
    v = (variant){.skip = "embeddings.word_embeddings.weight"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT, "missing tensor 'embeddings.word_embeddings.weight'",
                   NULL);
    v = (variant){.bad = "encoder.layer.0.attention.self.query.weight"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT,
                   "model.safetensors: tensor 'encoder.layer.0.attention.self.query.weight' has "
                   "shape [6, 5], expected [6, 6] (hidden_size, hidden_size from config.json)",
                   NULL);
    v = (variant){.bad = "embeddings.word_embeddings.weight"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT, "expected [11, 6] (vocab_size, hidden_size", NULL);
    v = (variant){.bad = "encoder.layer.1.intermediate.dense.bias"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT, "has shape [9], expected [10] (intermediate_size",
                   NULL);
    v = (variant){.bad = "pooler.dense.weight", .pooler = true};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT, "tensor 'pooler.dense.weight' has shape", NULL);
    v = (variant){.extra_layer = true};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT,
                   "belongs to a layer beyond num_hidden_layers 2 from config.json", NULL);
    v = (variant){.i64 = "embeddings.LayerNorm.weight"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_UNSUPPORTED,
                   "tensor 'embeddings.LayerNorm.weight' has dtype I64, expected F32, F16 or BF16",
                   NULL);

    /* vocab_size in config.json unlike the embedding rows */
    sembed__model_config c2 = c;
    c2.vocab_size = 12;
    uint8_t *buf = NULL;
    v = (variant){0};
    sembed__st_file *st = write_model(&c, &v, &buf);
    char prefix[8];
    CHECK(st &&
          sembed__config_check_weights(&c2, st, prefix, sizeof prefix, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "has shape [11, 6], expected [12, 6] (vocab_size, hidden_size"));
    /* fewer layers in the config than in the file */
    c2 = c;
    c2.num_hidden_layers = 1;
    CHECK(st &&
          sembed__config_check_weights(&c2, st, prefix, sizeof prefix, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "'encoder.layer.1."));
    sembed__st_close(st);
    free(buf);

    /* XLM-R: type_vocab_size 1 */
    sembed__config_free(&c);
    const char *xl = "{\"model_type\":\"xlm-roberta\",\"vocab_size\":13,\"hidden_size\":4,"
                     "\"num_hidden_layers\":1,\"num_attention_heads\":1,"
                     "\"intermediate_size\":8,\"max_position_embeddings\":7,"
                     "\"type_vocab_size\":1,\"pad_token_id\":1}";
    CHECK(sembed__config_parse_hf(&c, xl, strlen(xl), "config.json", &err) == SEMBED_OK);
    v = (variant){.prefix = "roberta.", .pooler = true};
    EXPECT_WEIGHTS(&c, &v, SEMBED_OK, NULL, "roberta.");
    sembed__config_free(&c);

    /* MPNet */
    const char *mp = "{\"model_type\":\"mpnet\",\"vocab_size\":13,\"hidden_size\":8,"
                     "\"num_hidden_layers\":2,\"num_attention_heads\":2,"
                     "\"intermediate_size\":12,\"max_position_embeddings\":10}";
    CHECK(sembed__config_parse_hf(&c, mp, strlen(mp), "config.json", &err) == SEMBED_OK);
    v = (variant){.pooler = true};
    EXPECT_WEIGHTS(&c, &v, SEMBED_OK, NULL, "");
    v = (variant){.prefix = "mpnet."};
    EXPECT_WEIGHTS(&c, &v, SEMBED_OK, NULL, "mpnet.");
    v = (variant){.skip = "encoder.relative_attention_bias.weight"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT,
                   "missing tensor 'encoder.relative_attention_bias.weight'", NULL);
    v = (variant){.bad = "encoder.relative_attention_bias.weight"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT,
                   "has shape [32, 1], expected [32, 2] (relative_attention_num_buckets, "
                   "num_attention_heads from config.json)",
                   NULL);
    v = (variant){.skip = "encoder.layer.1.attention.attn.o.bias"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT,
                   "missing tensor 'encoder.layer.1.attention.attn.o.bias'", NULL);
    v = (variant){.skip = "encoder.layer.0.attention.LayerNorm.weight"};
    EXPECT_WEIGHTS(&c, &v, SEMBED_ERR_FORMAT, "attention.LayerNorm.weight", NULL);
    /* a BERT file is not an MPNet file */
    sembed__model_config cb = c;
    cb.arch = SEMBED__ARCH_BERT;
    cb.type_vocab_size = 2;
    buf = NULL;
    st = write_model(&cb, &(variant){0}, &buf);
    CHECK(st &&
          sembed__config_check_weights(&c, st, prefix, sizeof prefix, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "missing tensor 'encoder.relative_attention_bias.weight'"));
    sembed__st_close(st);
    free(buf);
    sembed__config_free(&c);

    /* two candidate prefixes; a prefix longer than the caller's buffer */
    stw *w = calloc(1, sizeof *w);
    w->hl = (size_t)snprintf(w->hdr, sizeof w->hdr, "{");
    stw_add(w, "bert.embeddings.word_embeddings.weight", "F32", 2, (int64_t[]){2, 2});
    stw_add(w, "embeddings.word_embeddings.weight", "F32", 2, (int64_t[]){2, 2});
    buf = NULL;
    st = stw_finish(w, &buf);
    CHECK(sembed__config_parse_hf(&c, tiny, strlen(tiny), "config.json", &err) == SEMBED_OK);
    CHECK(st &&
          sembed__config_check_weights(&c, st, prefix, sizeof prefix, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "two sets of word embeddings"));
    sembed__st_close(st);
    free(buf);
    memset(w, 0, sizeof *w);
    w->hl = (size_t)snprintf(w->hdr, sizeof w->hdr, "{");
    stw_add(w, "a.very.long.prefix.embeddings.word_embeddings.weight", "F32", 2, (int64_t[]){2, 2});
    st = stw_finish(w, &buf);
    CHECK(st &&
          sembed__config_check_weights(&c, st, prefix, sizeof prefix, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "prefix"));
    sembed__st_close(st);
    free(buf);

    /* Dense weights */
    c.n_dense = 1;
    c.dense[0] = (sembed__dense_config){.in_features = 6, .out_features = 3, .bias = true};
    memset(w, 0, sizeof *w);
    w->hl = (size_t)snprintf(w->hdr, sizeof w->hdr, "{");
    stw_add(w, "linear.weight", "F32", 2, (int64_t[]){3, 6});
    stw_add(w, "linear.bias", "F32", 1, (int64_t[]){3});
    st = stw_finish(w, &buf);
    CHECK(st && sembed__config_check_dense(&c, 0, st, &err) == SEMBED_OK);
    c.dense[0].in_features = 7;
    CHECK(st && sembed__config_check_dense(&c, 0, st, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "tensor 'linear.weight' has shape [3, 6], expected [3, 7] (out_features, "
                       "in_features"));
    sembed__st_close(st);
    free(buf);
    memset(w, 0, sizeof *w);
    w->hl = (size_t)snprintf(w->hdr, sizeof w->hdr, "{");
    stw_add(w, "linear.weight", "F32", 2, (int64_t[]){3, 7});
    st = stw_finish(w, &buf);
    CHECK(st && sembed__config_check_dense(&c, 0, st, &err) == SEMBED_ERR_FORMAT);
    CHECK(has(err.msg, "missing tensor 'linear.bias'"));
    c.dense[0].bias = false;
    CHECK(st && sembed__config_check_dense(&c, 0, st, &err) == SEMBED_OK);
    sembed__st_close(st);
    free(buf);
    c.n_dense = 0;
    free(w);
    sembed__config_free(&c);
}

/* ---- real folders ------------------------------------------------------------------------------
 */

static void test_real(void) {
    const char *names[] = {"all-MiniLM-L6-v2",
                           "bge-small-en-v1.5",
                           "all-mpnet-base-v2",
                           "paraphrase-multilingual-MiniLM-L12-v2",
                           "multilingual-e5-small",
                           "e5-small-v2",
                           "gte-small",
                           "bge-base-en-v1.5"};
    int found = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        const char *dir = t_model_dir_opt(names[i]);
        if (!dir) continue;
        found++;
        sembed__model_config cfg;
        sembed_error err = {0};
        sembed_status s = sembed__config_load(dir, &cfg, &err);
        CHECKF(s == SEMBED_OK, "%s: %s", names[i], err.msg);
        if (s != SEMBED_OK) continue;
        char *path = sembed__path_join(cfg.transformer_dir, "model.safetensors");
        sembed__st_file *st = NULL;
        s = sembed__st_open(path, &st, &err);
        CHECKF(s == SEMBED_OK, "%s: %s", names[i], err.msg);
        if (st) {
            char prefix[64];
            s = sembed__config_check_weights(&cfg, st, prefix, sizeof prefix, &err);
            CHECKF(s == SEMBED_OK, "%s: %s", names[i], err.msg);
            sembed__st_close(st);
        }
        for (int32_t k = 0; k < cfg.n_dense; k++) {
            if (!cfg.dense[k].weights_safetensors) continue;
            s = sembed__st_open(cfg.dense[k].weights_path, &st, &err);
            CHECKF(s == SEMBED_OK, "%s: %s", names[i], err.msg);
            if (st) {
                CHECKF(sembed__config_check_dense(&cfg, k, st, &err) == SEMBED_OK, "%s", err.msg);
                sembed__st_close(st);
            }
        }
        printf("%s: %s, %d layers, H=%d, pooling %s, output %d, max_tokens %d%s\n", names[i],
               sembed__arch_name(cfg.arch), cfg.num_hidden_layers, cfg.hidden_size,
               cfg.n_pool_modes ? sembed__pool_mode_name(cfg.pool_modes[0]) : "unset",
               cfg.output_dim, cfg.max_tokens, cfg.normalize ? ", normalized" : "");
        sembed__free(path);
        sembed__config_free(&cfg);
    }
    if (!found) printf("note: no cached model folder; real-folder checks skipped\n");
}

int main(void) {
    test_hf();
    test_st_files();
    test_folders();
    test_weights();
    test_real();
    return t_done("test_config");
}
