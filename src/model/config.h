/* config.h — a model folder's configuration: config.json (the encoder), and the
 * sentence-transformers files (modules.json, 1_Pooling/config.json, Dense folders,
 * sentence_bert_config.json, config_sentence_transformers.json), parsed into one plain struct and
 * validated; plus the check of a safetensors file against the architecture's tensor names and
 * shapes. Not the tokenizer's configuration (src/tokenizer reads tokenizer*.json).
 *
 * Dimension letters used in shapes: V vocab_size, H hidden_size, P max_position_embeddings,
 * T type_vocab_size, I intermediate_size, A num_attention_heads, B relative_attention_num_buckets,
 * N layer index. */
#ifndef SEMBED_MODEL_CONFIG_H
#define SEMBED_MODEL_CONFIG_H

#include "common.h"
#include "model/safetensors.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sane upper bounds; configs beyond them are rejected as invalid. */
#define SEMBED__CFG_MAX_HIDDEN 65536
#define SEMBED__CFG_MAX_LAYERS 1000
#define SEMBED__CFG_MAX_VOCAB 10000000
#define SEMBED__CFG_MAX_INTERMEDIATE (1 << 20)
#define SEMBED__CFG_MAX_POSITIONS (1 << 20)
#define SEMBED__CFG_MAX_TYPE_VOCAB 1024
#define SEMBED__CFG_MAX_DENSE 4      /* Dense modules after pooling */
#define SEMBED__CFG_MAX_POOL_MODES 6 /* pooling modes concatenated */
#define SEMBED__CFG_MAX_PROMPTS 256
#define SEMBED__CFG_MAX_FILE (16u << 20) /* bytes of any one configuration file */

typedef enum sembed__arch {
    SEMBED__ARCH_UNSET = 0,
    SEMBED__ARCH_BERT,        /* model_type "bert" */
    SEMBED__ARCH_ROBERTA,     /* "roberta": BERT's tensors, positions offset by pad_token_id+1 */
    SEMBED__ARCH_XLM_ROBERTA, /* "xlm-roberta": as roberta */
    SEMBED__ARCH_MPNET,       /* "mpnet": relative position bias, no token types */
} sembed__arch;

typedef enum sembed__act {
    SEMBED__ACT_GELU = 0,  /* "gelu": exact, 0.5*x*(1+erf(x/sqrt(2))) */
    SEMBED__ACT_GELU_TANH, /* "gelu_new", "gelu_pytorch_tanh": the tanh approximation */
    SEMBED__ACT_RELU,      /* "relu" */
} sembed__act;

typedef enum sembed__pool_mode {
    SEMBED__POOL_CLS = 1,       /* the first token */
    SEMBED__POOL_MEAN,          /* mean over tokens */
    SEMBED__POOL_MAX,           /* elementwise max over tokens */
    SEMBED__POOL_MEAN_SQRT_LEN, /* sum / sqrt(number of tokens) */
    SEMBED__POOL_WEIGHTED_MEAN, /* position-weighted mean (weights 1..n) */
    SEMBED__POOL_LAST_TOKEN,    /* the last token */
} sembed__pool_mode;

typedef enum sembed__dense_act {
    SEMBED__DENSE_IDENTITY = 0, /* torch.nn.modules.linear.Identity */
    SEMBED__DENSE_TANH,         /* torch.nn.modules.activation.Tanh (ST's default) */
    SEMBED__DENSE_RELU,         /* torch.nn.modules.activation.ReLU */
    SEMBED__DENSE_SIGMOID,      /* torch.nn.modules.activation.Sigmoid */
    SEMBED__DENSE_GELU,         /* torch.nn.modules.activation.GELU (exact erf form) */
} sembed__dense_act;

typedef enum sembed__similarity {
    SEMBED__SIM_UNSET = 0, /* not given: sentence-transformers uses cosine */
    SEMBED__SIM_COSINE,
    SEMBED__SIM_DOT,
    SEMBED__SIM_EUCLIDEAN,
    SEMBED__SIM_MANHATTAN,
} sembed__similarity;

/* One Dense module: y = act(W x + b), W (out_features, in_features). */
typedef struct sembed__dense_config {
    int32_t in_features;
    int32_t out_features;
    bool bias;
    sembed__dense_act act;
    char *dir;          /* the module's folder (relative path from modules.json; after
                           sembed__config_load, dir/path joined) */
    char *weights_path; /* set by sembed__config_load: dir/model.safetensors, else
                           dir/pytorch_model.bin (which sembed cannot read yet) */
    bool weights_safetensors;
} sembed__dense_config;

typedef struct sembed__prompt {
    char *name;
    char *text;
} sembed__prompt;

/* Everything a folder's configuration says that sembed uses. Owned strings are freed by
 * sembed__config_free. Integers are in range once a parser returned SEMBED_OK. */
typedef struct sembed__model_config {
    /* config.json */
    sembed__arch arch;
    int32_t vocab_size;  /* V */
    int32_t hidden_size; /* H */
    int32_t num_hidden_layers;
    int32_t num_attention_heads; /* A; divides H */
    int32_t intermediate_size;   /* I */
    sembed__act hidden_act;
    int32_t max_position_embeddings;        /* P */
    int32_t type_vocab_size;                /* T; 0 for mpnet (no token types) */
    double layer_norm_eps;                  /* finite, > 0 */
    int32_t pad_token_id;                   /* in [0, V); absent: 0 for bert, 1 for the others */
    int32_t relative_attention_num_buckets; /* B; mpnet only (0 otherwise) */
    int32_t position_offset; /* first position id: 0 bert, pad_token_id+1 roberta/xlm-r,
                                2 mpnet (its padding_idx is fixed at 1) */
    int32_t max_positions;   /* P - position_offset: tokens the position table covers */

    /* modules.json; has_modules false for a plain Hugging Face folder */
    bool has_modules;
    char *transformer_dir; /* relative path of the Transformer module ("" = the folder itself);
                              after sembed__config_load, the joined folder path, holding
                              config.json and model.safetensors */
    char *pooling_dir;     /* relative path of the Pooling module, or NULL */
    int32_t n_pool_modes;  /* 0: pooling unset (plain HF folder): the caller chooses */
    sembed__pool_mode pool_modes[SEMBED__CFG_MAX_POOL_MODES]; /* concatenated in this order */
    int32_t pool_dim;    /* the pooling module's embedding_dimension (== hidden_size) */
    bool include_prompt; /* pool over prompt tokens too (default true) */
    int32_t n_dense;
    sembed__dense_config dense[SEMBED__CFG_MAX_DENSE];
    bool normalize;     /* a Normalize module ends the pipeline */
    int32_t output_dim; /* the embedding's size: the last Dense's out_features, else
                           n_pool_modes * pool_dim, else hidden_size (pooling unset) */

    /* sentence_bert_config.json */
    int32_t max_seq_length; /* 0 when absent */
    bool do_lower_case;     /* lowercase texts before tokenizing */
    int32_t max_tokens;     /* effective limit: min(max_seq_length if set, max_positions) */

    /* config_sentence_transformers.json */
    int32_t n_prompts;
    sembed__prompt *prompts; /* (n_prompts) in file order */
    int32_t default_prompt;  /* index into prompts, or -1 */
    sembed__similarity similarity;
} sembed__model_config;

/* Sets every field to its "nothing parsed yet" value. */
void sembed__config_init(sembed__model_config *cfg);
/* Frees owned strings and re-initializes. NULL is a no-op. */
void sembed__config_free(sembed__model_config *cfg);

/* Loads a model folder: config.json, and, when modules.json exists, the modules it lists and
 * their files; sentence_bert_config.json and config_sentence_transformers.json when present.
 * Then the cross-file checks (sembed__config_finish). On failure *cfg is freed (re-initialized).
 * Errors: SEMBED_ERR_IO (a listed file missing or unreadable), SEMBED_ERR_FORMAT (bad JSON, a
 * wrong type, a value out of range; the message names the file and field),
 * SEMBED_ERR_UNSUPPORTED (an architecture, activation or module sembed does not implement),
 * SEMBED_ERR_NOMEM. */
sembed_status sembed__config_load(const char *dir, sembed__model_config *cfg, sembed_error *err);

/* Each file's parser, from memory (`json`: `len` bytes, no NUL needed; `name`: the file name
 * for messages). Each fills its part of *cfg, which must have been initialized; on failure
 * the part may be half-filled (sembed__config_free still frees it all). */
sembed_status sembed__config_parse_hf(sembed__model_config *cfg, const char *json, size_t len,
                                      const char *name, sembed_error *err); /* config.json */
sembed_status sembed__config_parse_modules(sembed__model_config *cfg, const char *json, size_t len,
                                           const char *name, sembed_error *err);
sembed_status sembed__config_parse_pooling(sembed__model_config *cfg, const char *json, size_t len,
                                           const char *name, sembed_error *err);
/* A Dense folder's config.json: fills in/out features, bias and activation of *dense (its
 * folder comes from modules.json). */
sembed_status sembed__config_parse_dense(sembed__dense_config *dense, const char *json, size_t len,
                                         const char *name, sembed_error *err);
sembed_status sembed__config_parse_sbert(sembed__model_config *cfg, const char *json, size_t len,
                                         const char *name, sembed_error *err);
sembed_status sembed__config_parse_st(sembed__model_config *cfg, const char *json, size_t len,
                                      const char *name, sembed_error *err);
/* The checks across files once all are parsed: pooling dimension == hidden_size, the Dense
 * chain's in/out features, the prompts' default name; computes output_dim and max_tokens.
 * `dir` names the folder in messages. */
sembed_status sembed__config_finish(sembed__model_config *cfg, const char *dir, sembed_error *err);

/* Checks that the encoder's file `st` has every tensor the architecture needs, with shapes from
 * cfg and a readable dtype (F32, F16, BF16); tensors of more layers than num_hidden_layers are an
 * error; other extra tensors are ignored. Names may carry a prefix ("bert.", "roberta.",
 * "model."), detected from the word embeddings and written to `prefix` (capacity `prefix_cap`,
 * NUL-terminated, "" when none). Legacy "LayerNorm.gamma"/".beta" names are accepted for
 * ".weight"/".bias". Errors: SEMBED_ERR_FORMAT (missing tensor, wrong shape),
 * SEMBED_ERR_UNSUPPORTED (a dtype that cannot be read). */
sembed_status sembed__config_check_weights(const sembed__model_config *cfg,
                                           const sembed__st_file *st, char *prefix,
                                           size_t prefix_cap, sembed_error *err);

/* Finds `prefix` + `name` in st, trying the legacy LayerNorm.gamma/.beta spelling for names
 * ending in LayerNorm.weight/.bias. NULL when absent. */
const sembed__st_tensor *sembed__config_find_tensor(const sembed__st_file *st, const char *prefix,
                                                    const char *name);

/* Checks Dense module i's weights file: "linear.weight" (out_features, in_features) and, when
 * the module has a bias, "linear.bias" (out_features). */
sembed_status sembed__config_check_dense(const sembed__model_config *cfg, int32_t i,
                                         const sembed__st_file *st, sembed_error *err);

const char *sembed__arch_name(sembed__arch arch);
const char *sembed__pool_mode_name(sembed__pool_mode mode);

#endif
