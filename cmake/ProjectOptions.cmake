# Interface targets that carry warnings and sanitizer flags; every Vapor target links them PRIVATE.
add_library(vapor_warnings INTERFACE)
target_compile_options(vapor_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual
  $<$<BOOL:${VAPOR_WARNINGS_AS_ERRORS}>:-Werror>)

add_library(vapor_sanitizers INTERFACE)
if(VAPOR_SANITIZE OR VAPOR_FUZZ)
  target_compile_options(vapor_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(vapor_sanitizers INTERFACE -fsanitize=address,undefined)
endif()
if(VAPOR_SANITIZE_THREAD)
  if(VAPOR_SANITIZE OR VAPOR_FUZZ)
    message(FATAL_ERROR "ThreadSanitizer cannot be combined with AddressSanitizer")
  endif()
  # Asio uses std::atomic_thread_fence (fenced blocks, a reference count), which TSan does not
  # model and GCC warns about (-Wtsan). The fenced blocks go (the scheduler's mutex orders
  # handlers across threads without them); the reference count's objects stay on one thread.
  target_compile_options(vapor_sanitizers INTERFACE -fsanitize=thread -fno-omit-frame-pointer
                                                    -Wno-tsan)
  target_compile_definitions(vapor_sanitizers INTERFACE BOOST_ASIO_DISABLE_FENCED_BLOCK)
  target_link_options(vapor_sanitizers INTERFACE -fsanitize=thread)
endif()
# For libFuzzer (clang): coverage instrumentation in every library, no libFuzzer main; the fuzz
# targets themselves add -fsanitize=fuzzer (fuzz/CMakeLists.txt).
if(VAPOR_FUZZ)
  target_compile_options(vapor_sanitizers INTERFACE -fsanitize=fuzzer-no-link)
endif()

add_library(vapor_options INTERFACE)
target_link_libraries(vapor_options INTERFACE vapor_warnings vapor_sanitizers)
