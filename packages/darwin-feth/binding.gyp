{
  "targets": [
    {
      "target_name": "tapkit_darwin_feth",
      "conditions": [
        ["OS=='mac'", {
          "sources": [
            "native/addon.cc",
            "native/bpf_reader.cc",
            "native/ndrv_writer.cc",
            "native/sys.cc"
          ],
          "include_dirs": [
            "<!(node -p \"require('node-addon-api').include_dir\")",
            "../../native-common",
            "native/common"
          ],
          "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "MACOSX_DEPLOYMENT_TARGET": "10.13",
            "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
          }
        }],
        ["OS!='mac'", {"type": "none"}]
      ]
    }
  ]
}
