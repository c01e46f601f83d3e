/* qwen_template.h — Qwen2.5-Instruct's jinja chat template (the text stored in GGUF tokenizer.chat_template). */
#pragma once

extern const char qe_qwen25_chat_template[];
