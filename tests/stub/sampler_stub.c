/* sampler_stub.c — DEVELOPMENT STAND-IN for the parameter defaults, built only while src/sampler.c is absent. */
#include "sampler.h"

void qe_sample_params_default(qe_sample_params *p) {
    *p = (qe_sample_params){.temperature = 0.7f, .top_k = 20, .top_p = 0.8f, .min_p = 0, .repeat_penalty = 1.1f,
                            .presence_penalty = 0, .frequency_penalty = 0, .penalty_last_n = 0, .seed = 0};
}
void qe_sample_params_greedy(qe_sample_params *p) {
    *p = (qe_sample_params){.temperature = 0, .top_k = 0, .top_p = 1, .repeat_penalty = 1};
}
