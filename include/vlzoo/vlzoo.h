/* vlzoo: BLIP-family vision-language models in C. Includes every public
 * header. */
#ifndef VLZOO_VLZOO_H
#define VLZOO_VLZOO_H

#include "vlzoo/backend.h"
#include "vlzoo/convert.h"
#include "vlzoo/dtype.h"
#include "vlzoo/image.h"
#include "vlzoo/model.h"
#include "vlzoo/ops.h"
#include "vlzoo/pipeline.h"
#include "vlzoo/status.h"
#include "vlzoo/tensor.h"
#include "vlzoo/tokenizer.h"
#include "vlzoo/version.h"
#include "vlzoo/weights.h"
#include "vlzoo/zoo.h"

#endif
