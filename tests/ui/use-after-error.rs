// After an error in the description, the network's API still exists (as stubs): the code
// that uses it adds no errors of its own, and only the real one is shown.
use bp::{Network, Tensor};

bp::network! {
    /// Two inputs, two outputs, one typo.
    #[dtype(f64)]
    pub struct Net {
        input x: [4];
        input y: [4];
        let fc1 = linear(x, 3);
        let h = relu(fc) + y;
        let g = sum(fc1);
        output h, g;
    }
}

fn main() -> Result<(), bp::Error> {
    let mut net = Net::new(0);
    let x = Tensor::<f64>::zeros(&[2, 4]);
    let (h, g) = net.forward(&x, &x)?;
    let (dh, dg) = (h.clone(), g.clone());
    net.backward(&dh, &dg)?;
    net.backward_sgd(&dh, &dg, 0.1)?;
    let mut ws = net.workspace();
    let _ = net.predict_into(&mut ws, &x, &x)?;
    let (_h, _g) = net.predict(&x, &x)?;
    let _ = Net::try_new(1)?.param_names();
    net.set_training(false);
    println!("{:?} {}", net.param("fc1.weight").map(Tensor::shape), Net::STRUCTURE_HASH);
    Ok(())
}
