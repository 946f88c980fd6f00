// splatlab static viewer: Spark (three.js) renders .ply / compressed .ply / .sog / .spz / .splat.
//
// URL parameters:
//   url=FILE           splat file to open (same origin or CORS-enabled)
//   pos=x,y,z          camera position  (default: framed from the splats' bounds)
//   target=x,y,z       orbit target     (default: centre of the bounds)
//   up=x,y,z           world up         (default 0,0,1 - splatlab's convention)
//   fov=DEG            vertical field of view in degrees (default 50)
//   bg=RRGGBB          background colour (default 000000)
//   ui=0               hide the info panel (clean screenshots)
// The page reports its state in <body data-state="idle|loading|ready|error"> and window.splatlab.
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { SparkRenderer, SplatMesh } from "@sparkjsdev/spark";

const params = new URLSearchParams(window.location.search);
const EXTENSIONS = [".ply", ".sog", ".spz", ".splat"];
const LOAD_TIMEOUT_MS = 120000;

const status = { state: "idle", error: null, numSplats: 0, file: null, frames: 0 };
window.splatlab = status;

const canvas = document.getElementById("canvas");
const info = document.getElementById("info");
const errorBox = document.getElementById("error");
const drop = document.getElementById("drop");
if (params.get("ui") === "0") document.getElementById("panel").classList.add("minimal");

function vec(name, fallback) {
  const raw = params.get(name);
  if (!raw) return fallback;
  const v = raw.split(",").map(Number);
  if (v.length !== 3 || v.some((x) => !Number.isFinite(x))) {
    throw new Error(`URL parameter ${name}=${raw} is not three numbers (x,y,z)`);
  }
  return new THREE.Vector3(v[0], v[1], v[2]);
}

function setState(state, message) {
  status.state = state;
  document.body.dataset.state = state;
  if (state === "error") {
    status.error = message;
    errorBox.textContent = message;
    errorBox.hidden = false;
  } else {
    errorBox.hidden = true;
  }
}

function oneLine(err) {
  const text = err instanceof Error ? err.message : String(err);
  return (text || "unknown error").split("\n")[0];
}

let up, fovDeg, background;
try {
  up = vec("up", new THREE.Vector3(0, 0, 1)).normalize();
  fovDeg = Number(params.get("fov") || 50);
  if (!(fovDeg > 1 && fovDeg < 179)) throw new Error(`URL parameter fov=${params.get("fov")} must be in (1, 179) degrees`);
  const bg = params.get("bg") || "000000";
  if (!/^[0-9a-fA-F]{6}$/.test(bg)) throw new Error(`URL parameter bg=${bg} is not RRGGBB hex`);
  background = new THREE.Color(`#${bg}`);
} catch (err) {
  setState("error", oneLine(err));
  throw err;
}

const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true });
renderer.setPixelRatio(window.devicePixelRatio || 1);
renderer.setClearColor(background, 1);
const scene = new THREE.Scene();
scene.background = background;
const camera = new THREE.PerspectiveCamera(fovDeg, 1, 0.01, 1000);
camera.up.copy(up);
camera.position.set(3, 0, 1.5);
const spark = new SparkRenderer({ renderer });
scene.add(spark);
const controls = new OrbitControls(camera, canvas);
controls.enableDamping = true;

function resize() {
  const w = window.innerWidth, h = window.innerHeight;
  renderer.setSize(w, h, false);
  camera.aspect = w / h;
  camera.updateProjectionMatrix();
}
window.addEventListener("resize", resize);
resize();

renderer.setAnimationLoop(() => {
  controls.update();
  renderer.render(scene, camera);
  status.frames += 1;
});

let current = null;

function frame(mesh) {
  let target, position;
  const box = mesh.getBoundingBox(true);
  const size = box.getSize(new THREE.Vector3());
  const center = box.getCenter(new THREE.Vector3());
  target = vec("target", center);
  position = vec("pos", null);
  if (!position) {
    const radius = Math.max(size.length() / 2, 1e-3);
    const fov = THREE.MathUtils.degToRad(Math.min(fovDeg, fovDeg * camera.aspect));
    const dist = (radius / Math.sin(fov / 2)) * 1.05;
    // look from the side and slightly above, whatever axis is "up"
    const side = Math.abs(up.x) > 0.9 ? new THREE.Vector3(0, 1, 0) : new THREE.Vector3(1, 0, 0);
    const dir = side.sub(up.clone().multiplyScalar(side.dot(up))).normalize();
    dir.addScaledVector(up, Math.tan(THREE.MathUtils.degToRad(25))).normalize();
    position = target.clone().addScaledVector(dir, dist);
  }
  camera.position.copy(position);
  controls.target.copy(target);
  const far = Math.max(1000, position.distanceTo(target) * 20);
  camera.near = Math.max(1e-3, position.distanceTo(target) / 1000);
  camera.far = far;
  camera.updateProjectionMatrix();
  camera.lookAt(target);
  controls.update();
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function openBytes(bytes, fileName) {
  const lower = fileName.toLowerCase();
  if (!EXTENSIONS.some((e) => lower.endsWith(e))) {
    throw new Error(`${fileName}: unsupported file type (open .ply, compressed .ply, .sog, .spz or .splat)`);
  }
  if (bytes.byteLength === 0) throw new Error(`${fileName}: empty file (0 bytes)`);
  const mesh = new SplatMesh({ fileBytes: new Uint8Array(bytes), fileName });
  try {
    await withTimeout(mesh.initialized, LOAD_TIMEOUT_MS, `decoding ${fileName}`);
  } catch (err) {
    mesh.dispose();
    throw new Error(`${fileName}: cannot read splat file (${oneLine(err)})`);
  }
  const n = mesh.packedSplats ? mesh.packedSplats.numSplats : (mesh.extSplats ? mesh.extSplats.numSplats : 0);
  if (!n) {
    mesh.dispose();
    throw new Error(`${fileName}: the file holds no Gaussians`);
  }
  if (current) {
    scene.remove(current);
    current.dispose();
  }
  current = mesh;
  scene.add(mesh);
  frame(mesh);
  status.numSplats = n;
  status.file = fileName;
  info.textContent = `${fileName}: ${n.toLocaleString()} Gaussians. Drag to orbit, scroll to zoom.`;
}

async function load(what, getBytes) {
  setState("loading");
  info.textContent = `Loading ${what}…`;
  try {
    const bytes = await getBytes();
    await openBytes(bytes, what);
    setState("ready");
  } catch (err) {
    info.textContent = "Drop a .ply, compressed .ply, .sog, .spz or .splat file here.";
    setState("error", oneLine(err));
    console.error(err);
  }
}

async function fetchBytes(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`${url}: cannot fetch (${oneLine(err)})`);
  }
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`.trim());
  return await response.arrayBuffer();
}

// ---- inputs: ?url=, drag and drop, file picker
const url = params.get("url");
if (url) {
  const name = decodeURIComponent(new URL(url, window.location.href).pathname.split("/").pop() || url);
  load(name, () => fetchBytes(url));
}

let dragDepth = 0;
window.addEventListener("dragenter", (e) => { e.preventDefault(); dragDepth += 1; drop.hidden = false; });
window.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) drop.hidden = true; });
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => {
  e.preventDefault();
  dragDepth = 0;
  drop.hidden = true;
  const file = e.dataTransfer && e.dataTransfer.files[0];
  if (file) load(file.name, () => file.arrayBuffer());
});
document.getElementById("file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) load(file.name, () => file.arrayBuffer());
});
