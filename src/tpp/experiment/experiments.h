// The seeds' experiments (SPEC §6), each one command: `tpp experiment NAME`.
//
//   glu        Shazeer (2020): seven FFNs at matched parameters and FLOPs.
//   gqa        Ainslie et al. (2023): MHA -> GQA / MQA by mean-pooling, first
//              head or random KV heads, uptrained for alpha of the base's
//              steps; the same shapes trained from scratch; quality, KV bytes
//              and measured decode speed at a long context.
//   positions  RoFormer: RoPE, learned, sinusoidal, ALiBi and no positions;
//              training curves and held-out quality at 1x and 2x the
//              training length.
//   kv-cache   the KV-cache bytes of LLaMA-2-7B-shaped MHA, GQA-8 and MQA
//              from 1k to 32k tokens, and the engine's measured allocation.
//
// Each writes OUT/results.json (every entry), OUT/results.md (the tables,
// the papers' figures beside them and whether their findings reproduce) and
// plots as SVG and PNG. See lab.h for resuming.
#pragma once

#include <string>
#include <vector>

#include "tpp/experiment/lab.h"

namespace tpp::experiment {

const std::vector<std::string>& experiment_names();

// Runs (or resumes) one experiment. Unknown names are refused, listing the known ones.
void run_experiment(const std::string& name, const Options& options);

void run_glu(Lab& lab);
void run_gqa(Lab& lab);
void run_positions(Lab& lab);
void run_kv_cache(Lab& lab);

}  // namespace tpp::experiment
