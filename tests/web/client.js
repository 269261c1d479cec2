// client.js - drives mitral's DICOMweb with the dicomweb-client package (npm), the way a web
// viewer or an AI pipeline would: STOW-RS store, QIDO-RS search, WADO-RS metadata, instance and
// frames. Writes what it got into OUTDIR for tests/integration/t_web_client.py to check
// against the stored files, dcm2json and pydicom.
//   node client.js BASE_URL TOKEN OUTDIR FILE...
'use strict';
global.XMLHttpRequest = require('xhr2');
const fs = require('fs');
const path = require('path');
const { api } = require('dicomweb-client');

async function main() {
  const [url, token, outdir, ...files] = process.argv.slice(2);
  const client = new api.DICOMwebClient({ url, headers: { Authorization: 'Bearer ' + token } });
  const out = (name, data) => fs.writeFileSync(path.join(outdir, name),
    typeof data === 'string' ? data : Buffer.from(data));

  const datasets = files.map((f) => {
    const b = fs.readFileSync(f);
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  });
  const stored = await client.storeInstances({ datasets });
  out('stow.json', typeof stored === 'string' ? stored : JSON.stringify(stored));

  const studies = await client.searchForStudies({ queryParams: { ModalitiesInStudy: 'MR' } });
  out('studies.json', JSON.stringify(studies));
  const report = { studies: studies.length, series: {}, instances: {} };
  for (const st of studies) {
    const studyInstanceUID = st['0020000D'].Value[0];
    const series = await client.searchForSeries({ studyInstanceUID });
    for (const se of series) {
      const seriesInstanceUID = se['0020000E'].Value[0];
      const insts = await client.searchForInstances({ studyInstanceUID, seriesInstanceUID });
      report.series[seriesInstanceUID] = insts.length;
      const meta = await client.retrieveSeriesMetadata({ studyInstanceUID, seriesInstanceUID });
      for (const m of meta) {
        const sopInstanceUID = m['00080018'].Value[0];
        out(sopInstanceUID + '.json', JSON.stringify(m));
        // default Accept (type="application/dicom", no syntax named): mitral sends stored
        // Explicit VR Little Endian files as they are
        const inst = await client.retrieveInstance({ studyInstanceUID, seriesInstanceUID, sopInstanceUID });
        out(sopInstanceUID + '.dcm', Array.isArray(inst) ? inst[0] : inst);
        const nframes = m['00280008'] ? Number(m['00280008'].Value[0]) : 1;
        const frameNumbers = nframes >= 3 ? [1, 3] : [1];
        const frames = await client.retrieveInstanceFrames({
          studyInstanceUID, seriesInstanceUID, sopInstanceUID, frameNumbers,
        });
        frames.forEach((f, i) => out(sopInstanceUID + '.frame' + frameNumbers[i], f));
        report.instances[sopInstanceUID] = { frames: frameNumbers };
      }
    }
  }
  out('report.json', JSON.stringify(report));
}

main().catch((e) => {
  console.error('client.js failed:', e && (e.stack || e.message || e));
  if (e && e.status) console.error('HTTP status', e.status);
  process.exit(1);
});
