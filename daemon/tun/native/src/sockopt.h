#ifndef TSTIER_SOCKOPT_H
#define TSTIER_SOCKOPT_H
#include <node_api.h>

/* The redirect termination's socket options (sockopt.c). */
napi_value js_original_dst(napi_env env, napi_callback_info info);
napi_value js_marked_socket(napi_env env, napi_callback_info info);
napi_value js_set_recv_buffer(napi_env env, napi_callback_info info);

#endif
