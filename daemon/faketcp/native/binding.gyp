{
  "targets": [
    {
      "target_name": "tstier_rawtcp",
      "sources": ["src/rawtcp.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
