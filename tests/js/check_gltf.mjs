// Read a .glb with readers CoSpeech did not write: the Khronos glTF-Validator
// and three.js's GLTFLoader (as a web page or Godot-like engine would load it).
// usage: node check_gltf.mjs FILE.glb BONE t0 t1
// prints one JSON object: validator issue counts, animation duration, skinned
// bone count, morph-target track count, and BONE's world position at t0 and t1
// (seconds, three.js world = glTF Y-up metres) after the animation is applied.
import fs from 'node:fs';
import validator from 'gltf-validator';
import * as THREE from 'three';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';

const [file, boneName, t0, t1] = process.argv.slice(2);
const bytes = new Uint8Array(fs.readFileSync(file));
const report = await validator.validateBytes(bytes, { maxIssues: 100 });
const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
globalThis.self = globalThis;   // GLTFLoader looks for self.createImageBitmap; textures are not needed here
const gltf = await new Promise((ok, fail) => new GLTFLoader().parse(buf, '', ok, fail));
const clip = gltf.animations[0];
const bones = new Set();
gltf.scene.traverse((o) => { if (o.isSkinnedMesh) o.skeleton.bones.forEach((b) => bones.add(b.name)); });
const out = {
  errors: report.issues.numErrors, warnings: report.issues.numWarnings,
  messages: report.issues.messages.filter((m) => m.severity === 0).slice(0, 5).map((m) => `${m.code}: ${m.message}`),
  animations: gltf.animations.length, duration: clip ? clip.duration : null,
  bones: bones.size,
  morph_tracks: clip ? clip.tracks.filter((t) => t.name.endsWith('.morphTargetInfluences')).length : 0,
  morph_track_names: clip ? clip.tracks.filter((t) => t.name.endsWith('.morphTargetInfluences')).map((t) => t.name) : [],
  morph_targets: Object.fromEntries((() => { const m = []; gltf.scene.traverse((o) => {
    if (o.morphTargetDictionary) m.push([o.name, Object.keys(o.morphTargetDictionary).length]); }); return m; })()),
  positions: [],
};
const bone = gltf.scene.getObjectByName(boneName);
if (clip && bone) {
  const mixer = new THREE.AnimationMixer(gltf.scene);
  mixer.clipAction(clip).play();
  for (const t of [Number(t0), Number(t1)]) {
    mixer.setTime(t);
    gltf.scene.updateMatrixWorld(true);
    out.positions.push(bone.getWorldPosition(new THREE.Vector3()).toArray());
  }
}
console.log(JSON.stringify(out));
