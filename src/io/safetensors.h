/* safetensors.h — parser for the safetensors format: an 8-byte little-endian header
 * length, a JSON header {name: {dtype, shape, data_offsets}}, then the data. Every
 * offset and size is checked against the file before anything is used. */
#ifndef MC_SAFETENSORS_H
#define MC_SAFETENSORS_H

#include "io/tensors.h"

/* Largest header accepted: real headers are well under 1 MB even for big models. */
#define MC_SAFETENSORS_MAX_HEADER (100u << 20)

/* Adds every tensor of the file data[0..size) to `out`. `path` names it in messages
 * and is stored in the entries (must outlive them). */
mambac_status mc_safetensors_parse(const unsigned char *data, size_t size, const char *path,
                                   mc_tensor_list *out, mambac_error *err);

#endif
