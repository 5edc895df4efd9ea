/* state.h -- internals of saved context state (lib/state.c) that tests and fuzz targets use:
 * the checksum of the state format and the model fingerprint stored in every saved state. */
#ifndef VWN_STATE_H
#define VWN_STATE_H

#include "vwn.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes of the fixed header ("VWNS", u32 version, u64 body size) and of the checksum trailer. */
#define VWN_STATE_HEADER_BYTES 16
#define VWN_STATE_TRAILER_BYTES 8
#define VWN_STATE_VERSION 1

/* The checksum of the state format: a 64-bit FNV-1a over 8-byte little-endian words (the tail
 * bytes one at a time), finished with the length. A saved state's trailer is the checksum of
 * everything before it. */
uint64_t vwn_state_checksum(const void *data, size_t size);

/* The model's fingerprint: FNV-1a 64 over the hyperparameters, the GGUF header + metadata +
 * tensor table bytes, and the first and last 32 bytes of every tensor's data. */
uint64_t vwn_model_identity(const vwn_model *model);

#endif
