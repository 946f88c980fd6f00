import { defineConfig } from "vite";

// Relative asset URLs so dist/ works from any path (splatlab's static server, file hosting, a subfolder).
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 4096,
    assetsInlineLimit: 0,
    // stable file names: a rebuild of the same sources gives the same files (small git diffs)
    rollupOptions: {
      output: { entryFileNames: "assets/viewer.js", chunkFileNames: "assets/[name].js", assetFileNames: "assets/[name][extname]" },
    },
  },
});
