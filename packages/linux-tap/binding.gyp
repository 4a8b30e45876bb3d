{
  "targets": [
    {
      "target_name": "tapkit_linux",
      "conditions": [
        ["OS=='linux'", {
          "sources": [
            "native/addon.cc",
            "native/persist.cc",
            "native/rtnetlink.cc",
            "native/tap_handle.cc",
            "native/tun.cc"
          ],
          "include_dirs": [
            "<!(node -p \"require('node-addon-api').include_dir\")",
            "../../native-common",
            "native/common"
          ],
          "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
          "cflags!": ["-fno-exceptions"],
          "cflags_cc!": ["-fno-exceptions"],
          "cflags_cc": ["-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
        }],
        ["OS!='linux'", {"type": "none"}]
      ]
    }
  ]
}
