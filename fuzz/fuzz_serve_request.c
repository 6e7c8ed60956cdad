/* fuzz_serve_request.c — libFuzzer target for the server's request bodies (serve/api.c):
 * the first byte picks completions or chat, the rest is the body. A request that parses is
 * also put through the chat template and written back as a response (with its text as the
 * answer: the writer's UTF-8 repair on arbitrary bytes). */
#include <stdlib.h>
#include <string.h>

#include "serve/api.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    if (!size) return 0;
    const srv_kind kind = data[0] & 1 ? SRV_CHAT : SRV_COMPLETION;
    const char *body = (const char *)data + 1;
    const srv_limits lim = {.max_tokens = 4096, .max_prompt_ids = 1 << 16};
    srv_request r;
    char msg[256];
    const char *param;
    if (srv_parse_request(body, size - 1, kind, &lim, &r, msg, sizeof msg, &param) == 0) {
        char *text = NULL;
        size_t len = 0;
        mambac_error err;
        if (kind == SRV_CHAT) mambac_chat_apply("chatml", r.msgs, r.n_msgs, 1, &text, &len, &err);
        srv_token_lp lp = {.id = 0, .logprob = -1.0f, .n_top = 1, .top_id = {0}, .top_lp = {-1.0f}};
        const srv_result res = {.id = "cmpl-fuzz", .model = "fuzz", .text = text ? text : r.prompt,
                                .text_len = text ? len : r.prompt_len, .finish = "stop", .lps = &lp, .n_lps = 1, .usage = 1};
        free(srv_result_json(kind, 0, &res, 1, NULL));
        free(srv_result_json(kind, 1, &res, 1, NULL));
        mambac_free(text);
        srv_request_free(&r);
    } else {
        free(srv_error_json(msg, "invalid_request_error", param));
    }
    size_t n;
    free(srv_utf8_sanitize(body, size - 1, &n));
    return 0;
}
