/* routes.h — the routes requests are counted by (the "route" label of GET /metrics): one list, from which
 * the ids, their number and their names are all made, so no count is kept by hand beside it. What does not
 * live here: paths, methods and handlers (http.c's route table). */
#pragma once

/* X(id, label), in the order of the ids. */
#define SRV_ROUTES(X)                                                                                        \
    X(R_OTHER, "other")                                                                                      \
    X(R_PAGE, "page")                                                                                        \
    X(R_HEALTH, "/health")                                                                                   \
    X(R_METRICS, "/metrics")                                                                                 \
    X(R_CHAT, "/v1/chat/completions")                                                                        \
    X(R_COMPLETIONS, "/v1/completions")                                                                      \
    X(R_MODELS, "/v1/models")                                                                                \
    X(R_OLLAMA_CHAT, "/api/chat")                                                                            \
    X(R_OLLAMA_GENERATE, "/api/generate")                                                                    \
    X(R_OLLAMA_TAGS, "/api/tags")                                                                            \
    X(R_OLLAMA_VERSION, "/api/version")                                                                      \
    X(R_OLLAMA_SHOW, "/api/show")

#define SRV_ROUTE_ID(id, label) id,
typedef enum { SRV_ROUTES(SRV_ROUTE_ID) R__COUNT } route_id;
#undef SRV_ROUTE_ID
