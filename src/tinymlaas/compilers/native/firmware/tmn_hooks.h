/* Per-layer hooks for the instrumented build.
 *
 * The measuring build passes this header with -include to every .c file of the generated module, so
 * the module's TMN_LAYER_BEGIN/TMN_LAYER_END expansions call into the harness, which reads the timer.
 * The trailing semicolon keeps the expansion a complete statement whether or not the module adds one.
 */
#ifndef TMN_HOOKS_H
#define TMN_HOOKS_H

void tmn_hook_begin(int layer);
void tmn_hook_end(int layer);

#define TMN_LAYER_BEGIN(i) tmn_hook_begin(i);
#define TMN_LAYER_END(i) tmn_hook_end(i);

#endif
