/* Tokenizers for the text sides of the zoo.
 *
 * BERT WordPiece (the Q-Former's bert-base-uncased tokenizer): the same ids
 * as Hugging Face's BertTokenizerFast (tokenizers' BertNormalizer,
 * BertPreTokenizer and WordPiece model), which is what HF BLIP-2 processors
 * use. LAVIS's slow Python BertTokenizer (transformers 4) gives the same ids
 * except for unassigned code points and U+2B820..U+2B91F;
 * pipelines/bert_tokenizer.c lists these and the few hundred exotic code
 * points where utf8proc's Unicode 15 tables and tokenizers' older ones
 * disagree.
 *
 * Text is UTF-8; invalid UTF-8 (overlong forms, surrogates, truncated
 * sequences, code points past U+10FFFF) is refused with
 * VZ_ERR_INVALID_ARGUMENT rather than silently replaced. Every function
 * returns a vz_status and leaves a message (vz_last_error) on failure; a
 * tokenizer is read-only after loading and adding tokens, so several threads
 * may encode with one tokenizer at once. */
#ifndef VLZOO_TOKENIZER_H
#define VLZOO_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vlzoo/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vz_bert_tokenizer vz_bert_tokenizer;

/* Loads a WordPiece vocabulary: a vocab.txt (one token per line, the line
 * number is the id) or a Hugging Face tokenizer.json (detected by content: a
 * file whose first non-blank byte is '{' is read as JSON). From
 * tokenizer.json it reads model.vocab, model.unk_token,
 * model.continuing_subword_prefix, model.max_input_chars_per_word, the
 * BertNormalizer flags (lowercase, strip_accents, handle_chinese_chars,
 * clean_text), the [CLS]/[SEP] of the post-processor, the padding token and
 * added_tokens. A vocab.txt gets bert-base-uncased's settings: lowercase and
 * strip accents, "##", 100 characters a word, and [PAD] [UNK] [CLS] [SEP]
 * [MASK] as special tokens. Fails with VZ_ERR_IO (cannot read),
 * VZ_ERR_FORMAT (empty, malformed JSON, no unknown token in the vocabulary)
 * or VZ_ERR_UNSUPPORTED (a tokenizer.json of another model type). */
vz_status vz_bert_tokenizer_load(const char *path, vz_bert_tokenizer **out);
void vz_bert_tokenizer_free(vz_bert_tokenizer *tok);

/* Adds a special token the way HF's add_special_tokens does: when `content`
 * already is a token its id is returned; otherwise it gets the next id (the
 * current size: 30522 for "[DEC]" on bert-base-uncased). Added and special
 * tokens are matched whole in the input text before normalization
 * (case-sensitive, leftmost-longest) and never split. */
vz_status vz_bert_tokenizer_add_token(vz_bert_tokenizer *tok, const char *content, int32_t *id);

/* The id of a token (an added token or a vocabulary entry), or -1. */
int32_t vz_bert_tokenizer_id(const vz_bert_tokenizer *tok, const char *token);
/* The token with this id, or NULL when there is none. */
const char *vz_bert_tokenizer_token(const vz_bert_tokenizer *tok, int32_t id);
/* Number of ids: vocabulary plus added tokens (30523 after adding [DEC]). */
int32_t vz_bert_tokenizer_size(const vz_bert_tokenizer *tok);

typedef struct vz_bert_encode_options {
  bool add_special_tokens; /* [CLS] text [SEP] */
  int32_t bos_id;          /* replaces [CLS] when >= 0 (LAVIS ITG: [DEC]); -1: keep [CLS] */
  int max_length;          /* for truncation and padding; 0: none */
  bool truncation;         /* cut the text (right side) so all fits max_length */
  bool pad_to_max_length;  /* append [PAD] (mask 0) up to max_length */
} vz_bert_encode_options;

/* What a NULL options pointer means: specials on, no truncation or padding. */
#define VZ_BERT_ENCODE_OPTIONS_INIT                                                                \
  {                                                                                                \
    .add_special_tokens = true, .bos_id = -1, .max_length = 0, .truncation = false,                \
    .pad_to_max_length = false                                                                     \
  }

/* Encodes NUL-terminated UTF-8 `text`. *n is, on entry, the capacity of ids
 * (and of mask, which may be NULL) and, on return, the number of ids; when
 * the capacity is too small it fails with VZ_ERR_INVALID_ARGUMENT and *n is
 * the number needed (ids == NULL just asks for that number). mask[i] is 1
 * for tokens and 0 for padding. max_length smaller than the special tokens
 * with truncation, or padding without max_length, is refused. */
vz_status vz_bert_encode(const vz_bert_tokenizer *tok, const char *text,
                         const vz_bert_encode_options *opts, int32_t *ids, int32_t *mask, int *n);

/* Ids back to text like HF decode (clean_up_tokenization_spaces on):
 * tokens joined by spaces, "##" pieces glued to the previous token, " ."
 * " ," " !" " ?" " 's" and similar spaces removed; special and added
 * special tokens dropped when skip_special_tokens. *out is allocated with
 * malloc; free it with free(). An id outside the tokenizer is an error. */
vz_status vz_bert_decode(const vz_bert_tokenizer *tok, const int32_t *ids, int n,
                         bool skip_special_tokens, char **out);

/* LAVIS's blip_caption text cleanup (BlipCaptionProcessor.pre_caption):
 * lowercase (full Unicode case mapping, like Python's str.lower), each of
 * . ! " ( ) * # : ; ~ replaced by a space, runs of two or more whitespace
 * characters collapsed to one space, trailing newlines and surrounding
 * spaces stripped, then at most max_words words (split on single spaces;
 * max_words <= 0: no cap). LAVIS prepends its prompt after this step. *out
 * is allocated with malloc; free it with free(). */
vz_status vz_blip_caption_clean(const char *text, int max_words, char **out);

#ifdef __cplusplus
}
#endif
#endif
